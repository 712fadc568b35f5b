//! DPoP replay protection across every instance of the function
//! (`DPOP_REPLAY_STORE=dynamodb:TABLE`): each accepted proof is recorded in
//! a DynamoDB table with one conditional `PutItem`, which succeeds only for
//! the first instance that records it. The in-process cache
//! ([`crate::dpop`]) stays in front: a replay to the same instance is
//! refused without a call.
//!
//! The item: `proof` (the key: SHA-256 of the proof key's thumbprint and
//! the `jti`, so two different proofs never share one, and a `jti` is not
//! stored as the client wrote it), `expires_at` (UNIX seconds, the table's
//! TTL attribute: the end of the proof's acceptance window plus
//! [`CLOCK_MARGIN`]) and `writer` (random per request, see below).
//!
//! The store fails closed: unreachable, throttled past its retries, slow
//! past `HTTP_TIMEOUT_MS`, the table missing or access denied are all an
//! error (500), never an acceptance and never remembered. A retry after an
//! attempt whose answer was lost may meet the item that attempt wrote: the
//! refused write returns the item (`ReturnValuesOnConditionCheckFailure`),
//! and one carrying this request's own `writer` is this request's, not a
//! replay.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::aws::{AwsAccess, CallError, Service, text_at};
use crate::clock::Clock;
use crate::config::ConfigError;

/// The variable that turns the shared store on.
pub const VARIABLE: &str = "DPOP_REPLAY_STORE";

/// The table's partition key (a string attribute).
pub const KEY_ATTRIBUTE: &str = "proof";
/// The table's TTL attribute (a number: UNIX seconds).
pub const EXPIRY_ATTRIBUTE: &str = "expires_at";
/// Who wrote the item: random per request.
const WRITER_ATTRIBUTE: &str = "writer";

/// Kept this much longer than the proof's window: another instance whose
/// clock reads behind (by at most [`crate::dpop::REANCHOR`], its proof
/// clock's period) still finds the item while it could accept the proof.
pub const CLOCK_MARGIN: Duration = crate::dpop::REANCHOR;

/// Attempts of one record, within the request's time: the first and two
/// retries, as the AWS SDKs' standard mode.
const ATTEMPTS: u32 = 3;
/// The first retry's wait; each later one doubles it (halved at random).
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// Where proofs are remembered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReplayStore {
    /// In this instance's memory only (the default).
    #[default]
    Memory,
    /// In this DynamoDB table too, shared by every instance.
    DynamoDb { table: String },
}

impl ReplayStore {
    /// `memory` or `dynamodb:TABLE`.
    pub fn parse(text: &str) -> Result<ReplayStore, ConfigError> {
        let problem = |message: String| ConfigError::new(VARIABLE, message);
        match text.split_once(':') {
            None if text == "memory" => Ok(ReplayStore::Memory),
            Some(("dynamodb", table)) => {
                // DynamoDB's rule for table names.
                let valid = (3..=255).contains(&table.len())
                    && table.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                if !valid {
                    return Err(problem(format!(
                        "{table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"
                    )));
                }
                Ok(ReplayStore::DynamoDb { table: table.to_owned() })
            }
            _ => Err(problem(format!("{text:?}: expected memory or dynamodb:TABLE"))),
        }
    }
}

impl std::fmt::Display for ReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayStore::Memory => write!(f, "memory"),
            ReplayStore::DynamoDb { table } => write!(f, "dynamodb:{table}"),
        }
    }
}

/// What the shared store says of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// No instance had recorded it: this request may use it.
    First,
    /// Another request recorded it first.
    Replayed,
}

/// Why the store could not say: the request fails closed (500).
#[derive(Debug, thiserror::Error)]
#[error("DPoP replay store (DynamoDB table {table}): {problem}")]
pub struct StoreError {
    pub table: String,
    pub problem: String,
}

/// The DynamoDB table every instance records proofs in, with what calling
/// it takes (built at init, no I/O).
pub struct SharedReplayStore {
    table: String,
    aws: AwsAccess,
    http: reqwest::Client,
    clock: Clock,
    /// The whole record, retries included, is given this long.
    timeout: Duration,
}

impl SharedReplayStore {
    pub fn new(table: String, aws: AwsAccess, http: reqwest::Client, clock: Clock, timeout: Duration) -> Self {
        SharedReplayStore { table, aws, http, clock, timeout }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Records the proof `key` identifies, kept until `expires_at` (UNIX
    /// seconds): the first record of it anywhere, or a replay.
    pub async fn record(&self, key: &[u8; 32], expires_at: u64) -> Result<Recorded, StoreError> {
        let writer = random_hex::<16>().map_err(|e| self.error(format!("no randomness for the writer id: {e}")))?;
        let item = json!({
            "TableName": self.table,
            "Item": {
                KEY_ATTRIBUTE: {"S": hex(key)},
                EXPIRY_ATTRIBUTE: {"N": expires_at.saturating_add(CLOCK_MARGIN.as_secs()).to_string()},
                WRITER_ATTRIBUTE: {"S": writer},
            },
            "ConditionExpression": "attribute_not_exists(#key)",
            "ExpressionAttributeNames": {"#key": KEY_ATTRIBUTE},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        });
        let deadline = Instant::now() + self.timeout;
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.error(format!("no answer within HTTP_TIMEOUT_MS ({} ms)", self.timeout.as_millis())));
            }
            let outcome = self.aws.call(&self.http, &self.clock, Service::DynamoDb, &item, left).await;
            let error = match outcome {
                Ok(_) => return Ok(Recorded::First),
                Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                    return Ok(if written_by(&error, &writer) { Recorded::First } else { Recorded::Replayed });
                }
                Err(error) => error,
            };
            if attempt >= ATTEMPTS || !retryable(&error) {
                let tries = if attempt > 1 { format!(" (after {attempt} attempts)") } else { String::new() };
                return Err(self.error(format!("{}{tries}", describe(&error))));
            }
            let backoff = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            let jittered = backoff.mul_f64(0.5 + f64::from(random_byte()) / 510.0);
            tokio::time::sleep(jittered.min(deadline.saturating_duration_since(Instant::now()))).await;
            attempt += 1;
        }
    }

    fn error(&self, problem: String) -> StoreError {
        StoreError { table: self.table.clone(), problem }
    }
}

/// Whether the item a refused write returned is this request's own (an
/// earlier attempt whose answer was lost).
fn written_by(error: &CallError, writer: &str) -> bool {
    let CallError::Service { body, .. } = error else { return false };
    text_at(body, &format!("/Item/{WRITER_ATTRIBUTE}/S")) == Some(writer)
}

/// Throttling, DynamoDB's own 5xx, and no answer at all are tried again;
/// a missing table, denied access or a malformed request are not.
fn retryable(error: &CallError) -> bool {
    match error {
        CallError::Transport(_) => true,
        CallError::Service { status, code, .. } => {
            *status >= 500
                || matches!(
                    code.as_str(),
                    "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "RequestLimitExceeded"
                        | "LimitExceededException"
                )
        }
        CallError::Signing(_) | CallError::NotJson(_) => false,
    }
}

fn describe(error: &CallError) -> String {
    match error {
        CallError::Transport(e) if e.is_timeout() => format!("no answer in time ({e})"),
        CallError::Transport(e) => format!("unreachable ({e})"),
        other => other.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex<const N: usize>() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// For jitter: a failure of the system's randomness costs only its spread.
fn random_byte() -> u8 {
    let mut byte = [0u8; 1];
    getrandom::fill(&mut byte).map_or(128, |()| byte[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The error of a write refused with `item` returned.
    fn refused(item: Value) -> CallError {
        CallError::Service {
            status: 400,
            code: "ConditionalCheckFailedException".into(),
            message: String::new(),
            body: json!({"Item": item}),
        }
    }

    #[test]
    fn the_setting_is_memory_or_a_dynamodb_table() {
        assert_eq!(ReplayStore::parse("memory").expect("valid"), ReplayStore::Memory);
        let store = ReplayStore::parse("dynamodb:pets-dpop-replay").expect("valid");
        assert_eq!(store, ReplayStore::DynamoDb { table: "pets-dpop-replay".into() });
        assert_eq!(store.to_string(), "dynamodb:pets-dpop-replay");
        for (text, says) in [
            ("dynamodb:", "not a DynamoDB table name"),
            ("dynamodb:a b", "not a DynamoDB table name"),
            ("dynamodb:ab", "not a DynamoDB table name"),
            ("redis:cache", "expected memory or dynamodb:TABLE"),
            ("dynamodb", "expected memory or dynamodb:TABLE"),
        ] {
            let error = ReplayStore::parse(text).expect_err(text);
            assert_eq!(error.variable, VARIABLE);
            assert!(error.problem.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_refused_write_is_this_requests_own_only_with_its_writer_id() {
        let mine = refused(json!({"proof": {"S": "ab"}, "writer": {"S": "w1"}}));
        assert!(written_by(&mine, "w1"));
        assert!(!written_by(&mine, "w2"), "another request's item: a replay");
        assert!(!written_by(&refused(json!(null)), "w1"), "no item returned: a replay (closed)");
    }

    #[test]
    fn throttling_and_server_errors_are_retried_a_missing_table_is_not() {
        let service = |status: u16, code: &str| CallError::Service {
            status,
            code: code.into(),
            message: String::new(),
            body: Value::Null,
        };
        assert!(retryable(&service(400, "ProvisionedThroughputExceededException")));
        assert!(retryable(&service(400, "ThrottlingException")));
        assert!(retryable(&service(500, "InternalServerError")));
        assert!(!retryable(&service(400, "ResourceNotFoundException")));
        assert!(!retryable(&service(400, "AccessDeniedException")));
        assert!(!retryable(&service(400, "ValidationException")));
    }
}
