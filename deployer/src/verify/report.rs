//! What `deployer verify` found, check by check, and its three renderings:
//! a table for people (stderr), JSON for tools (stdout with `--json`) and
//! JUnit XML for CI dashboards. Nothing here holds a token or a key: checks
//! describe what they saw in their own words.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// The promise holds: what was seen.
    Pass(String),
    /// The promise is broken: what was seen instead.
    Fail(String),
    /// Not checked, and why (an input not given, a request that could not be made safely).
    NotChecked(String),
    /// A fact of the edge, recorded rather than judged (what API Gateway's
    /// own log says it did).
    Recorded(String),
}

/// One check: a stable id, what it promises, and how it came out.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub promise: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Check {
    pub fn new(id: impl Into<String>, promise: impl Into<String>, outcome: Outcome) -> Check {
        Check { id: id.into(), promise: promise.into(), outcome }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub checks: Vec<Check>,
    /// HTTP requests and TLS handshakes made.
    pub requests: usize,
    pub seconds: f64,
}

impl Report {
    pub fn new(url: String, checks: Vec<Check>, requests: usize, took: Duration) -> Report {
        Report { url, checks, requests, seconds: took.as_secs_f64() }
    }

    fn count(&self, wanted: fn(&Outcome) -> bool) -> usize {
        self.checks.iter().filter(|c| wanted(&c.outcome)).count()
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }

    /// Every promise checked holds.
    pub fn holds(&self) -> bool {
        self.failed() == 0
    }

    pub fn json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["passed"] = self.count(|o| matches!(o, Outcome::Pass(_))).into();
        value["failed"] = self.failed().into();
        value["not_checked"] = self.count(|o| matches!(o, Outcome::NotChecked(_))).into();
        value["recorded"] = self.count(|o| matches!(o, Outcome::Recorded(_))).into();
        value
    }

    /// JUnit XML: one test case per check (a failure, or skipped with the
    /// reason), in one suite named after the URL.
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("deployer verify");
        let mut suite = quick_junit::TestSuite::new(self.url.clone());
        for check in &self.checks {
            let status = match &check.outcome {
                Outcome::Pass(_) => quick_junit::TestCaseStatus::success(),
                Outcome::Fail(seen) => {
                    let mut status = quick_junit::TestCaseStatus::non_success(quick_junit::NonSuccessKind::Failure);
                    status.set_message(seen.clone());
                    status
                }
                Outcome::NotChecked(why) => {
                    let mut status = quick_junit::TestCaseStatus::skipped();
                    status.set_message(why.clone());
                    status
                }
                Outcome::Recorded(_) => quick_junit::TestCaseStatus::success(),
            };
            let mut case = quick_junit::TestCase::new(check.id.clone(), status);
            if let Outcome::Recorded(fact) = &check.outcome {
                case.set_system_out(fact.clone());
            }
            case.set_classname(check.promise.clone());
            suite.add_test_case(case);
        }
        suite.set_time(Duration::from_secs_f64(self.seconds));
        report.add_test_suite(suite);
        report.to_string().unwrap_or_default()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Verifying {}:", self.url)?;
        for check in &self.checks {
            let (mark, detail) = match &check.outcome {
                Outcome::Pass(seen) => ("ok  ", seen),
                Outcome::Fail(seen) => ("FAIL", seen),
                Outcome::NotChecked(why) => ("--  ", why),
                Outcome::Recorded(fact) => ("info", fact),
            };
            writeln!(f, "  {mark} {}: {}", check.id, check.promise)?;
            writeln!(f, "         {detail}")?;
        }
        let passed = self.count(|o| matches!(o, Outcome::Pass(_)));
        let skipped = self.count(|o| matches!(o, Outcome::NotChecked(_)));
        let recorded = self.count(|o| matches!(o, Outcome::Recorded(_)));
        write!(
            f,
            "{passed} held, {} broken, {skipped} not checked, {recorded} recorded; {} requests in {:.1} s.",
            self.failed(),
            self.requests,
            self.seconds
        )?;
        writeln!(f)
    }
}
