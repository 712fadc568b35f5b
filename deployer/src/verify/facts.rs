//! What only API Gateway's own log shows, recorded for the requests verify
//! sent (found by their `x-amzn-RequestId`): the resource path it matched
//! for each spelling of a path, and the client certificate's subject DN as
//! it passes it to the authorizer (`$context.identity.clientCert.subjectDN`,
//! whose spelling a certificate allowlist by DN depends on).
//!
//! Read from the stage's access log (`stage.access_log`, whose format names
//! both): in CloudWatch for a deployed stage, where lines arrive seconds to
//! a minute after the request (polled), or from a file for `deployer local
//! --access-log`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::report::{Check, Outcome};

/// How long a deployed stage's access log may take to show a request.
const CLOUDWATCH_DELIVERY: Duration = Duration::from_secs(90);
/// How long a local edge's file may take (it writes as it answers).
const FILE_DELIVERY: Duration = Duration::from_secs(5);
/// Between two reads of the log.
const POLL: Duration = Duration::from_millis(500);

/// Where the stage's access log is read.
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

/// A request whose log line is wanted, with what it was.
#[derive(Debug, Clone)]
pub struct Sent {
    pub label: String,
    pub request_id: String,
}

const ID: &str = "edge.facts";
const WHAT: &str = "what API Gateway did with verify's requests, from its access log (recorded, not judged)";

/// The fact check: each sent request's resource path and status, and the
/// subject DN, as the access log has them.
pub async fn record(source: &Source, sent: &[Sent]) -> Check {
    let lines = match read(source, sent).await {
        Ok(lines) => lines,
        Err(why) => return Check::new(ID, WHAT, Outcome::NotChecked(why)),
    };
    let text = |line: &Value, key: &str| line[key].as_str().map(str::to_owned);
    let mut facts = Vec::new();
    let subject = lines.values().find_map(|line| text(line, "clientCertSubjectDN"));
    facts.push(format!("subjectDN {}", subject.unwrap_or_else(|| "(none logged)".into())));
    for request in sent {
        facts.push(match lines.get(&request.request_id) {
            Some(line) => format!(
                "{} → resourcePath {}, status {}",
                request.label,
                text(line, "resourcePath").unwrap_or_else(|| "(none)".into()),
                line["status"]
            ),
            None => format!("{} → not in the log yet", request.label),
        });
    }
    Check::new(ID, WHAT, Outcome::Recorded(facts.join("; ")))
}

/// The access-log lines of `sent`, by request id; an error says why none can be read.
async fn read(source: &Source, sent: &[Sent]) -> Result<HashMap<String, Value>, String> {
    if sent.is_empty() {
        return Err("no request answered with a request id (x-amzn-RequestId)".into());
    }
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
            if let Some(line) = find(source, &request.request_id).await? {
                found.insert(request.request_id.clone(), line);
            }
        }
        if found.len() == sent.len() || started.elapsed() >= budget {
            return Ok(found);
        }
        tokio::time::sleep(crate::retry::scaled(POLL)).await;
    }
}

/// The line of request `id`, if the log has it yet.
async fn find(source: &Source, id: &str) -> Result<Option<Value>, String> {
    let of_request = |message: &str| -> Option<Value> {
        let line: Value = serde_json::from_str(message.trim()).ok()?;
        (line["requestId"] == id).then_some(line)
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
