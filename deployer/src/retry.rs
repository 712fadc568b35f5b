//! Waiting out AWS, in one place: retrying a call on named errors only, and
//! polling until a resource reaches a status.
//!
//! AWS is eventually consistent and rate-limited: a WAF web ACL may not be
//! usable for minutes after it is created, ACM says a certificate is in use
//! for minutes after its domain is deleted, a new IAM role cannot be assumed
//! by Lambda for seconds. Each such case is a [`Policy`]: the error codes that
//! mean "not yet" and how long to keep trying (the budgets are
//! terraform-provider-aws's). Anything else fails at once. Throttling
//! (HTTP 429, `TooManyRequestsException`) and 5xx answers are retried by the
//! SDK itself, configured in `aws.rs`.
//!
//! `DEPLOYER_TIME_SCALE` (default 1) multiplies every wait, budget and
//! backoff here and in the SDK's retries: tests run AWS-like delays scaled
//! down, and the deployer scales its patience with them.

use std::fmt::Debug;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_apigateway::config::interceptors::InterceptorContext;
use aws_sdk_apigateway::config::retry::{ClassifyRetry, RetryAction};
use tokio::time::Instant;

use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// What "not yet" looks like for one kind of wait.
#[derive(Debug)]
pub struct Policy {
    /// What is being waited for, for the progress line.
    pub waiting_for: &'static str,
    /// Error codes that mean "not yet".
    pub codes: &'static [&'static str],
    /// When set, only errors whose message contains this (a code shared with
    /// real failures, such as Lambda's `InvalidParameterValueException`).
    pub message: Option<&'static str>,
    /// How long to keep trying, unscaled.
    pub budget: Duration,
}

/// A new IAM role is not assumable by Lambda for a few seconds.
pub const IAM_ROLE_PROPAGATION: Policy = Policy {
    waiting_for: "IAM to let Lambda assume the new role",
    codes: &["InvalidParameterValueException"],
    message: Some("cannot be assumed"),
    budget: Duration::from_secs(120),
};

/// API Gateway refuses a just-created role as the account's CloudWatch role
/// until IAM has propagated it.
pub const ACCOUNT_ROLE_PROPAGATION: Policy = Policy {
    waiting_for: "IAM to let API Gateway assume the new CloudWatch role",
    codes: &["BadRequestException"],
    message: Some("role ARN does not have required permissions"),
    budget: Duration::from_secs(120),
};

/// Lambda refuses a change while the last one is in progress.
pub const LAMBDA_UPDATE_IN_PROGRESS: Policy = Policy {
    waiting_for: "Lambda to finish the function's last update",
    codes: &["ResourceConflictException"],
    message: None,
    budget: Duration::from_secs(300),
};

/// WAF does not see a just-created IP set or web ACL for a while, still sees
/// a just-removed association or ACL, and refuses a change made with a lock
/// token someone else's change has made stale (the step reads a fresh one).
pub const WAF_CHANGE: Policy = Policy {
    waiting_for: "WAF to see the latest change",
    codes: &["WAFUnavailableEntityException", "WAFAssociatedItemException", "WAFOptimisticLockException"],
    message: None,
    budget: Duration::from_secs(300),
};

/// A just-created stage may be unknown to WAF too.
pub const WAF_ASSOCIATION: Policy = Policy {
    waiting_for: "WAF to see the web ACL and the stage",
    codes: &["WAFUnavailableEntityException", "WAFNonexistentItemException"],
    message: None,
    budget: Duration::from_secs(300),
};

/// ACM holds a certificate "in use" for minutes after its domain is deleted.
pub const ACM_IN_USE: Policy = Policy {
    waiting_for: "ACM to release the certificate of the deleted domain",
    codes: &["ResourceInUseException"],
    message: None,
    budget: Duration::from_secs(600),
};

/// A create whose answer was lost (a timeout, a dropped connection, a 5xx)
/// may have happened: before it is sent again, what it would have made is
/// looked for ([`create_or_find`]).
pub const LOST_ANSWER: Policy =
    Policy { waiting_for: "an answer to a create", codes: &[], message: None, budget: Duration::from_secs(120) };

/// A create AWS answered "already exists": how long to wait for its lists
/// to show what exists (WAF's and IAM's lag their writes by minutes).
pub const MADE_ALREADY: Policy = Policy {
    waiting_for: "a resource AWS says exists to be listed",
    codes: &[],
    message: None,
    budget: Duration::from_secs(300),
};

/// API Gateway serialises changes to one REST API and answers a write that
/// overlaps another with 409 `ConflictException` "Unable to complete
/// operation due to concurrent modification. Please try again later." The
/// SDK does not retry it on its own; this classifier (on the API Gateway
/// client, `aws.rs`) makes every API Gateway call retried on exactly that
/// message, within the SDK's attempts and backoff, as terraform-provider-aws
/// does. Any other `ConflictException` (a path part that exists) is not.
#[derive(Debug)]
pub struct ConcurrentModification;

impl ClassifyRetry for ConcurrentModification {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(response) = ctx.response() else { return RetryAction::NoActionIndicated };
        let says_so = response
            .body()
            .bytes()
            .is_some_and(|body| String::from_utf8_lossy(body).contains("concurrent modification"));
        if response.status().as_u16() == 409 && says_so {
            RetryAction::transient_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "API Gateway concurrent modification"
    }
}

/// Keeps the SDK from sending a create again when its answer may have been
/// lost after AWS acted: for creates AWS does not refuse to repeat (a second
/// CreateRestApi makes a second API), the caller looks first
/// ([`create_or_find`]). Throttling and "concurrent modification", which
/// AWS answers without acting, are still retried by the SDK.
#[derive(Debug)]
pub struct AnswerMayBeLost;

impl ClassifyRetry for AnswerMayBeLost {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        let server_error = ctx.response().is_some_and(|r| r.status().is_server_error());
        if error.is_timeout_error() || error.is_connector_error() || error.is_response_error() || server_error {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "a create whose answer may be lost"
    }
}

/// What a create ended with: its own answer, or what a lost answer had
/// made, found.
#[derive(Debug)]
pub enum Created<T, S> {
    New(T),
    Found(S),
}

/// Sends a create that AWS would carry out twice if asked twice (it takes
/// no idempotency token and refuses no duplicate). `send` must carry
/// [`AnswerMayBeLost`] (the SDK then returns a lost answer instead of
/// sending the create again); after one, `find` looks for what the create
/// may have made, and only if it finds nothing is the create sent again.
pub async fn create_or_find<T, S, E, Send, SendFut, Find, FindFut>(
    operation: &str,
    mut send: Send,
    mut find: Find,
) -> anyhow::Result<Created<T, S>>
where
    Send: FnMut() -> SendFut,
    SendFut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    Find: FnMut() -> FindFut,
    FindFut: Future<Output = anyhow::Result<Option<S>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut backoff = Backoff::new(LOST_ANSWER.budget);
    loop {
        let error = match send().await {
            Ok(created) => return Ok(Created::New(created)),
            Err(error) if answer_may_be_lost(&error) => error,
            Err(error) => anyhow::bail!("{operation}: {}", crate::error::describe(&error)),
        };
        if let Some(found) = find().await? {
            eprintln!("    {operation}: its answer was lost, but it was done; continuing with what it made");
            return Ok(Created::Found(found));
        }
        let why = crate::error::describe(&error);
        if !backoff.wait(LOST_ANSWER.waiting_for, "").await {
            anyhow::bail!("{operation}: {why}");
        }
    }
}

/// Whether AWS may have acted on a call whose answer is this error.
fn answer_may_be_lost<E>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => service.raw().status().is_server_error(),
        _ => false,
    }
}

/// The factor every wait is multiplied by (`DEPLOYER_TIME_SCALE`).
pub fn time_scale() -> f64 {
    static SCALE: LazyLock<f64> = LazyLock::new(|| {
        std::env::var("DEPLOYER_TIME_SCALE")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0)
    });
    *SCALE
}

/// `duration`, scaled.
pub fn scaled(duration: Duration) -> Duration {
    duration.mul_f64(time_scale())
}

/// Runs `call` until it succeeds, fails with an error `policy` does not name,
/// or the policy's budget is spent. The result is the SDK's, for `.aws()`,
/// `.found()` or `.gone()`.
pub async fn retry<T, E, R, F, Fut>(policy: &Policy, mut call: F) -> Result<T, SdkError<E, R>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut backoff = Backoff::new(policy.budget);
    loop {
        match call().await {
            Err(error) if matches(policy, &error) && backoff.wait(policy.waiting_for, code_of(&error)).await => {}
            result => return result,
        }
    }
}

/// Like [`retry`], for steps of several calls (read, then write with what
/// was read): `step` returns the SDK error it stopped on, if any, and is run
/// again from the start when that error is one `policy` names.
pub async fn retry_step<T, F, Fut>(policy: &Policy, mut step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut backoff = Backoff::new(policy.budget);
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(StepError::Aws { code, message, operation }) => {
                let named = policy.codes.contains(&code.as_str()) && policy.message.is_none_or(|m| message.contains(m));
                if !(named && backoff.wait(policy.waiting_for, &code).await) {
                    anyhow::bail!("{operation}: {code}: {message}");
                }
            }
            Err(StepError::Other(error)) => return Err(error),
        }
    }
}

/// A failed step of [`retry_step`]: an AWS error (retried when named) or
/// anything else (never retried).
#[derive(Debug)]
pub enum StepError {
    Aws { operation: String, code: String, message: String },
    Other(anyhow::Error),
}

impl StepError {
    pub fn aws<E: ProvideErrorMetadata + std::error::Error + 'static, R: Debug>(
        operation: &str,
        error: SdkError<E, R>,
    ) -> StepError {
        match error.as_service_error().and_then(|e| e.code()) {
            Some(code) => StepError::Aws {
                operation: operation.to_owned(),
                code: code.to_owned(),
                message: error.as_service_error().and_then(|e| e.message()).unwrap_or_default().to_owned(),
            },
            None => StepError::Other(anyhow::anyhow!("{operation}: {}", crate::error::describe(&error))),
        }
    }
}

impl From<anyhow::Error> for StepError {
    fn from(error: anyhow::Error) -> StepError {
        StepError::Other(error)
    }
}

/// A wait whose budget was spent (`wait_until`): callers that can leave
/// the rest for a later run (a certificate waiting for its DNS record) tell
/// it from a failure.
#[derive(Debug, thiserror::Error)]
#[error("gave up waiting for {waiting_for} after {seconds}s")]
pub struct GaveUp {
    pub waiting_for: String,
    pub seconds: u64,
}

/// Polls until `poll` returns `Some`, or `budget` (unscaled) is spent ([`GaveUp`]);
/// `waiting_for` names the status for the progress line and the error.
pub async fn wait_until<T, F, Fut>(waiting_for: &str, budget: Duration, mut poll: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let mut backoff = Backoff::new(budget);
    loop {
        if let Some(value) = poll().await? {
            return Ok(value);
        }
        if !backoff.wait(waiting_for, "").await {
            return Err(GaveUp { waiting_for: waiting_for.to_owned(), seconds: scaled(budget).as_secs() }.into());
        }
    }
}

fn matches<E: ProvideErrorMetadata, R>(policy: &Policy, error: &SdkError<E, R>) -> bool {
    let Some(service) = error.as_service_error() else { return false };
    service.code().is_some_and(|code| policy.codes.contains(&code))
        && policy.message.is_none_or(|m| service.message().is_some_and(|text| text.contains(m)))
}

fn code_of<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> &str {
    error.as_service_error().and_then(|e| e.code()).unwrap_or_default()
}

/// Exponential backoff with jitter (1 s doubling to 15 s, scaled), within a
/// budget, with a progress line on the first wait and every 30 s after.
struct Backoff {
    started: Instant,
    budget: Duration,
    next: Duration,
    last_said: Option<Instant>,
}

impl Backoff {
    fn new(budget: Duration) -> Backoff {
        Backoff {
            started: Instant::now(),
            budget: scaled(budget),
            next: scaled(Duration::from_secs(1)),
            last_said: None,
        }
    }

    /// Sleeps before the next attempt; `false` when the budget is spent.
    async fn wait(&mut self, waiting_for: &str, code: &str) -> bool {
        let elapsed = self.started.elapsed();
        if elapsed >= self.budget {
            return false;
        }
        if self.last_said.is_none_or(|at| at.elapsed() >= scaled(Duration::from_secs(30))) {
            let why = if code.is_empty() { String::new() } else { format!(" ({code})") };
            eprintln!(
                "    waiting for {waiting_for}{why}: {}s of at most {}s",
                elapsed.as_secs(),
                self.budget.as_secs()
            );
            self.last_said = Some(Instant::now());
        }
        // Full jitter in [next/2, next): many waiters do not retry in step.
        let pause = self.next.mul_f64(0.5 + jitter() / 2.0).min(self.budget - elapsed);
        tokio::time::sleep(pause).await;
        self.next = (self.next * 2).min(scaled(Duration::from_secs(15)));
        true
    }
}

/// A number in [0, 1), different on every call (no RNG dependency needed
/// for jitter).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let values: Vec<f64> = (0..100).map(|_| jitter()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.windows(2).any(|w| w[0] != w[1]));
    }

    /// A policy with a short budget. The tests run on tokio's paused clock:
    /// every wait is virtual, so they take no real time and their bounds are exact.
    const SHORT: Policy = Policy { budget: Duration::from_secs(2), ..WAF_CHANGE };

    #[tokio::test(start_paused = true)]
    async fn a_wait_gives_up_after_its_budget_and_not_before() {
        let started = Instant::now();
        let mut polls = 0;
        let result: anyhow::Result<()> = wait_until("Godot", SHORT.budget, || {
            polls += 1;
            async { Ok(None) }
        })
        .await;
        let error = result.expect_err("never came");
        assert!(error.to_string().contains("gave up waiting for Godot after 2s"), "{error}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(2500), "{waited:?}");
        // 1 s doubling, with jitter in [½, 1): two to four polls in two seconds.
        assert!((2..=4).contains(&polls), "{polls} polls");
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_is_retried_on_named_codes_only() {
        let mut attempts = 0;
        let result = retry_step(&SHORT, || {
            attempts += 1;
            let attempt = attempts;
            async move {
                match attempt {
                    1 | 2 => Err(StepError::Aws {
                        operation: "CreateWebACL".into(),
                        code: "WAFUnavailableEntityException".into(),
                        message: "not yet".into(),
                    }),
                    _ => Ok(attempt),
                }
            }
        })
        .await;
        assert_eq!(result.expect("third time"), 3);

        let mut attempts = 0;
        let result: anyhow::Result<()> = retry_step(&SHORT, || {
            attempts += 1;
            async {
                Err(StepError::Aws {
                    operation: "CreateWebACL".into(),
                    code: "WAFInvalidParameterException".into(),
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert_eq!(attempts, 1, "another error is not retried");
        assert!(result.expect_err("fails").to_string().contains("CreateWebACL: WAFInvalidParameterException: bad"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_code_is_retried_only_with_its_message() {
        const IAM_SHORT: Policy = Policy { budget: Duration::from_secs(2), ..IAM_ROLE_PROPAGATION };
        let step = |message: &'static str| {
            let mut attempts = 0;
            async move {
                let result: anyhow::Result<()> = retry_step(&IAM_SHORT, || {
                    attempts += 1;
                    async move {
                        Err(StepError::Aws {
                            operation: "CreateFunction".into(),
                            code: "InvalidParameterValueException".into(),
                            message: message.into(),
                        })
                    }
                })
                .await;
                assert!(result.is_err());
                attempts
            }
        };
        assert_eq!(step("Unsupported runtime").await, 1);
        assert!(step("The role defined for the function cannot be assumed by Lambda.").await >= 2);
    }
}
