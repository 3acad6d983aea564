"""Validates YAML files against a JSON Schema (Draft 2020-12).

Usage: check_schema.py SCHEMA.json FILE.yaml...
Prints one line per file: `ok <file>` or `invalid <file>: <first error>`.
Exits 0 when it could check every file (valid or not), 2 on a bad schema.
"""
import json
import sys

import jsonschema
import yaml


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            print(f"invalid {path}: at /{where}: {errors[0].message[:200]}")
        else:
            print(f"ok {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
