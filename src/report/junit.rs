//! JUnit XML for CI test reporters: a tiny writer ([`JunitSuite`],
//! [`write_junit`]) shared with `finalping compare`, and `junit.xml` of a run
//! (written when the scenario has thresholds): one test case per threshold
//! plus one for the run status, so an invalid run never shows up green.
//! Follows the common Jenkins/Ant JUnit schema (`testsuites` › `testsuite` ›
//! `testcase` with `failure` / `error`).

use super::{Exporter, RunReport};
use crate::report::RunStatus;
use crate::thresholds::Outcome;
use std::io::{self, Write};

/// File name of a run's JUnit report.
pub const JUNIT_FILE: &str = "junit.xml";

/// One test case; `failure` / `error` = (message, details).
#[derive(Debug, Clone, Default)]
pub struct JunitCase {
    pub classname: String,
    pub name: String,
    pub time_s: f64,
    pub failure: Option<(String, String)>,
    pub error: Option<(String, String)>,
    /// Not judged, with the reason.
    pub skipped: Option<String>,
    pub system_out: Option<String>,
}

/// One test suite with its properties.
#[derive(Debug, Clone, Default)]
pub struct JunitSuite {
    pub name: String,
    pub time_s: f64,
    pub properties: Vec<(String, String)>,
    pub cases: Vec<JunitCase>,
}

/// Writes `<testsuites>` with the given suites.
pub fn write_junit(suites: &[JunitSuite], out: &mut dyn Write) -> io::Result<()> {
    let count = |f: &dyn Fn(&JunitCase) -> bool| -> usize {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(c))
            .count()
    };
    let tests = count(&|_| true);
    let failures = count(&|c| c.failure.is_some());
    let errors = count(&|c| c.error.is_some());
    let skipped = count(&|c| c.skipped.is_some());
    let time: f64 = suites.iter().map(|s| s.time_s).sum();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="finalping" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{time:.3}">"#
    )?;
    for s in suites {
        let n = s.cases.len();
        let f = s.cases.iter().filter(|c| c.failure.is_some()).count();
        let e = s.cases.iter().filter(|c| c.error.is_some()).count();
        let k = s.cases.iter().filter(|c| c.skipped.is_some()).count();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{n}" failures="{f}" errors="{e}" skipped="{k}" time="{:.3}">"#,
            esc(&s.name),
            s.time_s
        )?;
        if !s.properties.is_empty() {
            writeln!(out, "    <properties>")?;
            for (k, v) in &s.properties {
                writeln!(
                    out,
                    r#"      <property name="{}" value="{}"/>"#,
                    esc(k),
                    esc(v)
                )?;
            }
            writeln!(out, "    </properties>")?;
        }
        for c in &s.cases {
            write!(
                out,
                r#"    <testcase classname="{}" name="{}" time="{:.3}""#,
                esc(&c.classname),
                esc(&c.name),
                c.time_s
            )?;
            if c.failure.is_none()
                && c.error.is_none()
                && c.skipped.is_none()
                && c.system_out.is_none()
            {
                writeln!(out, "/>")?;
                continue;
            }
            writeln!(out, ">")?;
            if let Some((msg, text)) = &c.failure {
                writeln!(
                    out,
                    r#"      <failure message="{}" type="failure">{}</failure>"#,
                    esc(msg),
                    esc(text)
                )?;
            }
            if let Some((msg, text)) = &c.error {
                writeln!(
                    out,
                    r#"      <error message="{}" type="error">{}</error>"#,
                    esc(msg),
                    esc(text)
                )?;
            }
            if let Some(msg) = &c.skipped {
                writeln!(out, r#"      <skipped message="{}"/>"#, esc(msg))?;
            }
            if let Some(text) = &c.system_out {
                writeln!(out, "      <system-out>{}</system-out>", esc(text))?;
            }
            writeln!(out, "    </testcase>")?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// XML-escapes text and attribute values; drops characters XML 1.0 forbids.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The run's thresholds as a JUnit suite.
pub fn thresholds_suite(r: &RunReport) -> JunitSuite {
    let classname = format!("finalping.{}", r.scenario);
    let mut cases: Vec<JunitCase> = r
        .thresholds
        .iter()
        .map(|t| {
            let detail = format!("{}: {}", t.threshold, t.message);
            let mut c = JunitCase {
                classname: format!("{classname}.thresholds"),
                name: t.threshold.clone(),
                ..JunitCase::default()
            };
            match t.outcome {
                Outcome::Pass => c.system_out = Some(detail),
                Outcome::Fail => c.failure = Some((t.message.clone(), detail)),
                Outcome::Invalid => c.error = Some((t.message.clone(), detail)),
            }
            c
        })
        .collect();
    let mut status = JunitCase {
        classname: classname.clone(),
        name: "run status".to_string(),
        time_s: r.duration_s,
        ..JunitCase::default()
    };
    let why = (r.status_reason.clone(), r.status_reason.clone());
    match r.status {
        RunStatus::Passed => status.system_out = Some(r.status_reason.clone()),
        RunStatus::Failed => status.failure = Some(why),
        RunStatus::Invalid | RunStatus::Interrupted | RunStatus::Incomplete => {
            status.error = Some(why)
        }
    }
    cases.push(status);
    JunitSuite {
        name: format!("finalping thresholds: {}", r.scenario),
        time_s: r.duration_s,
        properties: vec![
            ("run_id".to_string(), r.run_id.clone()),
            ("status".to_string(), r.status.as_str().to_string()),
            ("started_at".to_string(), r.started_at.clone()),
            ("target".to_string(), r.manifest.target.url.clone()),
        ],
        cases,
    }
}

/// `junit.xml` of a run with thresholds.
pub struct ThresholdsJunit;

impl Exporter for ThresholdsJunit {
    fn file_name(&self) -> &'static str {
        JUNIT_FILE
    }

    fn write(&self, report: &RunReport, out: &mut dyn Write) -> io::Result<()> {
        write_junit(&[thresholds_suite(report)], out)
    }

    fn wanted(&self, report: &RunReport) -> bool {
        !report.thresholds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_counts_cases() {
        let suite = JunitSuite {
            name: "s <1>".into(),
            time_s: 1.0,
            properties: vec![("k".into(), "a\"b".into())],
            cases: vec![
                JunitCase {
                    classname: "c".into(),
                    name: "p99 < 800ms & more".into(),
                    failure: Some(("bad\u{1}".into(), "x > y".into())),
                    ..JunitCase::default()
                },
                JunitCase {
                    classname: "c".into(),
                    name: "ok".into(),
                    ..JunitCase::default()
                },
            ],
        };
        let mut out = Vec::new();
        write_junit(&[suite], &mut out).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(
            xml.contains(r#"tests="2" failures="1" errors="0" skipped="0""#),
            "{xml}"
        );
        assert!(xml.contains("p99 &lt; 800ms &amp; more"), "{xml}");
        assert!(xml.contains(r#"message="bad""#), "{xml}");
        assert!(xml.contains(r#"value="a&quot;b""#), "{xml}");
        assert!(xml.contains(r#"<testcase classname="c" name="ok" time="0.000"/>"#));
    }
}
