"""Reads finalping's CI outputs with real consumers and prints what they saw
as JSON (driven by tests/thresholds.rs and tests/compare.rs).

    check_ci_outputs.py junit FILE   -> suites and cases as junitparser parses them
    check_ci_outputs.py markdown FILE -> the tables markdown-it-py (GFM) renders
"""
import json
import sys

from junitparser import Error, Failure, JUnitXml, Skipped
from markdown_it import MarkdownIt


def junit(path):
    xml = JUnitXml.fromfile(path)
    suites = []
    for suite in xml:
        cases = []
        for case in suite:
            kinds = [type(r) for r in case.result]
            if Failure in kinds:
                result = "failure"
            elif Error in kinds:
                result = "error"
            elif Skipped in kinds:
                result = "skipped"
            else:
                result = "passed"
            message = case.result[0].message if case.result else None
            cases.append({"classname": case.classname, "name": case.name,
                          "result": result, "message": message})
        suites.append({"name": suite.name, "tests": suite.tests,
                       "failures": suite.failures, "errors": suite.errors,
                       "skipped": suite.skipped, "cases": cases})
    return {"suites": suites}


def markdown(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables, current, row, in_cell = [], None, None, False
    for tok in tokens:
        if tok.type == "table_open":
            current = []
        elif tok.type == "table_close":
            tables.append(current)
            current = None
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close" and current is not None:
            current.append(row)
        elif tok.type == "inline" and current is not None and row is not None:
            row.append(tok.content)
    headings = [t.content for i, t in enumerate(tokens)
                if t.type == "inline" and i > 0 and tokens[i - 1].type == "heading_open"]
    return {"headings": headings, "tables": tables}


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    print(json.dumps(junit(path) if kind == "junit" else markdown(path)))
