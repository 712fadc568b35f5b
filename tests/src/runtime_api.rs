//! The Lambda Runtime API (2018-06-01), served on 127.0.0.1, so a real
//! `bootstrap` binary can be run exactly as Lambda runs it: it long-polls
//! `/invocation/next`, then posts a response or an error.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::server::{Recorded, Reply, TestServer};

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct Observed {
    next_polls: Vec<Instant>,
    init_error: Option<String>,
}

struct Shared {
    observed: Mutex<Observed>,
    polled: Notify,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>,
    outcomes: mpsc::UnboundedSender<(String, Outcome)>,
}

pub struct RuntimeApi {
    server: TestServer,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<(String, String)>,
    outcomes: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Outcome)>>,
    counter: Mutex<u64>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (events, event_receiver) = mpsc::unbounded_channel();
        let (outcome_sender, outcomes) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            observed: Mutex::new(Observed::default()),
            polled: Notify::new(),
            events: tokio::sync::Mutex::new(event_receiver),
            outcomes: outcome_sender,
        });
        let handler_shared = shared.clone();
        let server = TestServer::start_async(Arc::new(move |request: Recorded| {
            let shared = handler_shared.clone();
            Box::pin(async move { route(request, &shared).await })
        }))
        .await;
        RuntimeApi { server, shared, events, outcomes: tokio::sync::Mutex::new(outcomes), counter: Mutex::new(0) }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.server.addr.to_string()
    }

    /// The environment Lambda gives a function, pointing at this API.
    pub fn lambda_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.endpoint()),
            ("AWS_LAMBDA_FUNCTION_NAME", "authorizer".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/authorizer".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/21/[$LATEST]0123".into()),
            ("AWS_REGION", "eu-west-1".into()),
        ]
    }

    /// When the function first asked for work (its cold start ends there).
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.polled.notified();
            if let Some(at) = self.shared.observed.lock().expect("observed").next_polls.first().copied() {
                return Some(at);
            }
            let remaining = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(remaining.min(Duration::from_millis(20)), notified).await;
        }
    }

    pub fn init_error(&self) -> Option<String> {
        self.shared.observed.lock().expect("observed").init_error.clone()
    }

    /// Hands `event` to the function and waits for what it posts back.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Option<Outcome> {
        let id = {
            let mut counter = self.counter.lock().expect("counter");
            *counter += 1;
            format!("req-{counter:06}")
        };
        self.events.send((id.clone(), event.to_string())).ok()?;
        let mut outcomes = self.outcomes.lock().await;
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(remaining, outcomes.recv()).await {
                Ok(Some((answered, outcome))) if answered == id => return Some(outcome),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
}

async fn route(request: Recorded, shared: &Shared) -> Reply {
    const PREFIX: &str = "/2018-06-01/runtime/";
    let Some(rest) = request.path.strip_prefix(PREFIX) else {
        return Reply::status(404, "not found");
    };
    let parse = |body: &str| serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    if rest == "invocation/next" {
        shared.observed.lock().expect("observed").next_polls.push(Instant::now());
        shared.polled.notify_waiters();
        // Long poll, bounded so a forgotten function cannot hang a test run.
        let mut events = shared.events.lock().await;
        return match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Some((id, body))) => {
                let deadline_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() + 30_000)
                    .unwrap_or_default();
                Reply::json(body)
                    .header("Lambda-Runtime-Aws-Request-Id", &id)
                    .header("Lambda-Runtime-Deadline-Ms", deadline_ms)
                    .header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:eu-west-1:123456789012:function:authorizer",
                    )
                    .header("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=0")
            }
            _ => Reply::status(504, "no invocation"),
        };
    }
    if rest == "init/error" {
        shared.observed.lock().expect("observed").init_error = Some(request.body.clone());
        return Reply::status(202, "{}");
    }
    if let Some(id) = rest.strip_prefix("invocation/") {
        if let Some(id) = id.strip_suffix("/response") {
            let _ = shared.outcomes.send((id.to_owned(), Outcome::Response(parse(&request.body))));
            return Reply::status(202, "{}");
        }
        if let Some(id) = id.strip_suffix("/error") {
            let _ = shared.outcomes.send((id.to_owned(), Outcome::Error(parse(&request.body))));
            return Reply::status(202, "{}");
        }
    }
    Reply::status(404, "not found")
}

/// Spawns `binary` with only the Lambda environment plus `env`.
pub fn spawn_function(binary: &std::path::Path, api: &RuntimeApi, env: &[(&str, String)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(binary);
    command.env_clear();
    for (name, value) in api.lambda_env().into_iter().chain(env.iter().map(|(n, v)| (*n, v.clone()))) {
        command.env(name, value);
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    command.spawn().expect("spawn function binary")
}
