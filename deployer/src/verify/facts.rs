//! What only AWS's own logs show, recorded for the requests verify sent
//! (found by API Gateway's request id, `x-amzn-RequestId`):
//!
//! - from the stage's access log (`stage.access_log`, whose format names
//!   them): the resource path API Gateway matched for each spelling of a
//!   path, and the client certificate's subject DN as it passes it to the
//!   authorizer (`$context.identity.clientCert.subjectDN`, whose spelling a
//!   certificate allowlist by DN depends on);
//! - from the authorizer's own log (its decision line names API Gateway's
//!   request id): the method ARN it was given, and its decision.
//!
//! Each is read in CloudWatch for a deployed stage, where lines arrive
//! seconds to a minute after the request (polled), or from a file for
//! `deployer local --access-log / --function-log`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::report::{Check, Outcome};

/// How long a deployed stage's logs may take to show a request.
const CLOUDWATCH_DELIVERY: Duration = Duration::from_secs(90);
/// How long a local edge's files may take (written as it answers).
const FILE_DELIVERY: Duration = Duration::from_secs(5);
/// Between two reads of a log.
const POLL: Duration = Duration::from_millis(500);

/// Where one log is read.
pub enum Source {
    File(PathBuf),
    CloudWatch {
        logs: aws_sdk_cloudwatchlogs::Client,
        group: String,
        since_ms: i64,
    },
    /// Not readable, and why.
    Unavailable(String),
}

/// The two logs the facts come from.
pub struct Logs {
    /// The stage's access log: one JSON line per request, `requestId` first.
    pub access: Source,
    /// The authorizer's log: its decision lines carry `fields.api_request_id`.
    pub function: Source,
}

/// A request whose lines are wanted, with what it was.
#[derive(Debug, Clone)]
pub struct Sent {
    pub label: String,
    pub request_id: String,
    /// It carried a token, so the authorizer was asked (a request without
    /// one is answered 401 by API Gateway itself).
    pub authorized: bool,
}

const ID: &str = "edge.facts";
const WHAT: &str = "what API Gateway and the authorizer did with verify's requests, from their logs (recorded)";

/// The fact check: each sent request's resource path and status, the
/// subject DN, and the method ARN the authorizer got, as the logs have them.
pub async fn record(logs: &Logs, sent: &[Sent]) -> Check {
    let access = match read(&logs.access, sent, &["requestId"]).await {
        Ok(lines) => lines,
        Err(why) => return Check::new(ID, WHAT, Outcome::NotChecked(why)),
    };
    let asked: Vec<Sent> = sent.iter().filter(|s| s.authorized).cloned().collect();
    let decisions = read(&logs.function, &asked, &["fields", "api_request_id"]).await;
    let text = |line: &Value, path: &[&str]| path.iter().fold(line, |v, key| &v[*key]).as_str().map(str::to_owned);
    let mut facts = Vec::new();
    let subject = access.values().find_map(|line| text(line, &["clientCertSubjectDN"]));
    facts.push(format!("subjectDN {}", subject.unwrap_or_else(|| "(none logged)".into())));
    for request in sent {
        let Some(line) = access.get(&request.request_id) else {
            facts.push(format!("{} → not in the access log yet", request.label));
            continue;
        };
        let mut fact = format!(
            "{} → resourcePath {}, status {}",
            request.label,
            text(line, &["resourcePath"]).unwrap_or_else(|| "(none)".into()),
            line["status"]
        );
        if request.authorized {
            match decisions.as_ref().map(|lines| lines.get(&request.request_id)) {
                Ok(Some(decision)) => fact.push_str(&format!(
                    ", method ARN {} ({})",
                    text(decision, &["fields", "method_arn"]).unwrap_or_default(),
                    text(decision, &["fields", "decision"]).unwrap_or_default()
                )),
                Ok(None) => fact.push_str(", the authorizer logged no decision for it"),
                Err(_) => {}
            }
        }
        facts.push(fact);
    }
    if let Err(why) = decisions {
        facts.push(format!("method ARNs not read: {why}"));
    }
    Check::new(ID, WHAT, Outcome::Recorded(facts.join("; ")))
}

/// The lines of `sent` in `source`, by request id (read at `key`); an error
/// says why none can be read.
async fn read(source: &Source, sent: &[Sent], key: &[&str]) -> Result<HashMap<String, Value>, String> {
    let budget = match source {
        Source::Unavailable(why) => return Err(why.clone()),
        Source::File(_) => FILE_DELIVERY,
        Source::CloudWatch { .. } => CLOUDWATCH_DELIVERY,
    };
    let budget = crate::retry::scaled(budget);
    let started = Instant::now();
    let mut found = HashMap::new();
    loop {
        for request in sent {
            if found.contains_key(&request.request_id) {
                continue;
            }
            if let Some(line) = find(source, &request.request_id, key).await? {
                found.insert(request.request_id.clone(), line);
            }
        }
        if found.len() == sent.len() || started.elapsed() >= budget {
            return Ok(found);
        }
        tokio::time::sleep(crate::retry::scaled(POLL)).await;
    }
}

/// The JSON line whose `key` is `id`, if the log has it yet.
async fn find(source: &Source, id: &str, key: &[&str]) -> Result<Option<Value>, String> {
    let of_request = |message: &str| -> Option<Value> {
        let line: Value = serde_json::from_str(message.trim()).ok()?;
        (key.iter().fold(&line, |v, k| &v[*k]) == id).then_some(line)
    };
    match source {
        Source::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            Ok(text.lines().find_map(of_request))
        }
        Source::CloudWatch { logs, group, since_ms } => {
            // A quoted term: the one pattern CloudWatch (and its stand-ins) match exactly.
            let events = logs
                .filter_log_events()
                .log_group_name(group)
                .start_time(*since_ms)
                .filter_pattern(format!("\"{id}\""))
                .send()
                .await
                .map_err(|e| format!("reading {group} (logs:FilterLogEvents): {}", crate::error::describe(&e)))?;
            Ok(events.events().iter().filter_map(|e| e.message()).find_map(of_request))
        }
        Source::Unavailable(why) => Err(why.clone()),
    }
}
