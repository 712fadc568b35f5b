//! The authorizer function, run as Lambda runs it: the stack's `bootstrap` as
//! a child process with the stack's environment (and nothing of ours), asking
//! a Lambda Runtime API (2018-06-01) served here on 127.0.0.1 for work.
//!
//! Up to `concurrency` execution environments, each serving one invocation at
//! a time, started when a request finds none free. Lambda's rules kept:
//! init may take up to 10 s before the first poll; the stack's timeout runs
//! from the moment the function takes the event; a timeout or a crash ends the
//! environment, and the next invocation starts a new one (a cold start). An
//! init error the function reports is printed.

use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// Lambda's limit on a function's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an invocation gave no response.
#[derive(Debug)]
pub enum Failure {
    /// The function answered with an error (`Unauthorized` is one).
    FunctionError(Value),
    Timeout,
    /// The process exited, or never reached its first poll.
    Crashed(String),
}

pub struct Function {
    binary: PathBuf,
    environment: Vec<(String, String)>,
    timeout: Duration,
    /// The execution environments' slots; a slot is held for the whole of an
    /// invocation. A permit of `free` guarantees an unheld slot.
    slots: Vec<Mutex<Option<Environment>>>,
    free: tokio::sync::Semaphore,
    /// Where the function's output goes instead of stderr (`--function-log`).
    log: Option<std::fs::File>,
}

impl Function {
    pub fn new(binary: PathBuf, environment: Vec<(String, String)>, timeout: Duration, concurrency: usize) -> Function {
        let concurrency = concurrency.max(1);
        Function {
            binary,
            environment,
            timeout,
            slots: (0..concurrency).map(|_| Mutex::new(None)).collect(),
            free: tokio::sync::Semaphore::new(concurrency),
            log: None,
        }
    }

    /// Sends the function's output (its log, as CloudWatch would get it) to
    /// `file` instead of stderr.
    pub fn logging_to(self, file: std::fs::File) -> Function {
        Function { log: Some(file), ..self }
    }

    /// Starts the first environment now rather than at the first request, so
    /// init errors show at start.
    pub async fn warm_up(&self) -> anyhow::Result<()> {
        if let Some(slot) = self.slots.first() {
            let mut running = slot.lock().await;
            if running.is_none() {
                *running = Some(self.start().await?);
            }
        }
        Ok(())
    }

    pub async fn invoke(&self, event: Value) -> Result<Value, Failure> {
        let _permit = self.free.acquire().await.map_err(|_| Failure::Crashed("shut down".into()))?;
        // Warm environments first (slots fill from the front), as Lambda reuses them.
        let Some(mut running) = self.slots.iter().find_map(|slot| slot.try_lock().ok()) else {
            return Err(Failure::Crashed("no free execution environment".into()));
        };
        if running.as_ref().is_none_or(|environment| environment.exited().is_some()) {
            *running = Some(self.start().await.map_err(|e| Failure::Crashed(format!("{e:#}")))?);
        }
        let Some(environment) = running.as_ref() else {
            return Err(Failure::Crashed("no execution environment".into()));
        };
        let outcome = environment.invoke(request_id(), event, self.timeout).await;
        if matches!(outcome, Err(Failure::Timeout | Failure::Crashed(_))) {
            // Lambda discards an environment after a timeout or a crash.
            if let Some(environment) = running.take() {
                environment.stop();
            }
        }
        outcome
    }

    async fn start(&self) -> anyhow::Result<Environment> {
        Environment::start(&self.binary, &self.environment, self.log.as_ref()).await
    }
}

/// A Lambda request id: a random UUID, so an id cannot be guessed from the last.
fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

type Answer = oneshot::Sender<Result<Value, Failure>>;

struct Invocation {
    id: String,
    event: Bytes,
    deadline_ms: u128,
    taken: oneshot::Sender<()>,
}

/// What the Runtime API of one environment shares with its handlers.
struct RuntimeState {
    events: Mutex<mpsc::Receiver<Invocation>>,
    /// The invocation in progress: its id and where its outcome goes.
    waiting: std::sync::Mutex<Option<(String, Answer)>>,
    init_error: std::sync::Mutex<Option<String>>,
    /// The function has asked for work at least once (its init is over).
    polled: std::sync::atomic::AtomicBool,
    /// The function's process id, once started: only its connections are served.
    function: watch::Receiver<Option<u32>>,
}

struct Environment {
    /// The Runtime API's address (`AWS_LAMBDA_RUNTIME_API`), for tests that knock on it.
    #[cfg_attr(not(test), allow(dead_code))]
    address: std::net::SocketAddr,
    events: mpsc::Sender<Invocation>,
    state: Arc<RuntimeState>,
    /// Set (to how it ended) once the process has exited.
    exit: watch::Receiver<Option<String>>,
    kill: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Environment {
    async fn start(
        binary: &std::path::Path,
        environment: &[(String, String)],
        log: Option<&std::fs::File>,
    ) -> anyhow::Result<Environment> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("the Lambda Runtime API")?;
        let address = listener.local_addr()?;
        let (events, receiver) = mpsc::channel(1);
        let (started, function) = watch::channel(None);
        let state = Arc::new(RuntimeState {
            events: Mutex::new(receiver),
            waiting: std::sync::Mutex::new(None),
            init_error: std::sync::Mutex::new(None),
            polled: std::sync::atomic::AtomicBool::new(false),
            function,
        });
        let server = tokio::spawn(serve_runtime_api(listener, state.clone()));
        // The function's logs go where Lambda would send them: not the access log.
        let output = || -> anyhow::Result<Stdio> {
            Ok(match log {
                Some(file) => Stdio::from(file.try_clone().context("the function's log file")?),
                None => Stdio::from(std::io::stderr()),
            })
        };
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .stdin(Stdio::null())
            .stdout(output()?)
            .stderr(output()?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let _ = started.send(child.id());
        let (exit_sender, exit) = watch::channel(None);
        let (kill, killed) = oneshot::channel::<()>();
        let watched = state.clone();
        tokio::spawn(async move {
            let how = tokio::select! {
                status = child.wait() => match status {
                    Ok(status) => format!("exited ({status})"),
                    Err(e) => format!("lost ({e})"),
                },
                _ = killed => {
                    let _ = child.kill().await;
                    "stopped".to_owned()
                }
            };
            let init_error = watched.init_error.lock().map(|e| e.clone()).unwrap_or_default();
            let how = match init_error {
                Some(error) => format!("{how} after an init error: {error}"),
                None => how,
            };
            // Lambda's Runtime.ExitError: the runtime died during init without
            // reporting why; what it printed is above.
            if !watched.polled.load(Ordering::Relaxed) && !how.starts_with("stopped") {
                eprintln!("authorizer init error: the function {how} before asking for work (its output is above)");
            }
            if let Ok(mut waiting) = watched.waiting.lock()
                && let Some((_, answer)) = waiting.take()
            {
                let _ = answer.send(Err(Failure::Crashed(how.clone())));
            }
            let _ = exit_sender.send(Some(how));
        });
        Ok(Environment { address, events, state, exit, kill: std::sync::Mutex::new(Some(kill)), server })
    }

    fn exited(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    async fn invoke(&self, id: String, event: Value, timeout: Duration) -> Result<Value, Failure> {
        let (answer, answered) = oneshot::channel();
        if let Ok(mut waiting) = self.state.waiting.lock() {
            *waiting = Some((id.clone(), answer));
        }
        let (taken, was_taken) = oneshot::channel();
        let deadline_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + timeout;
        let invocation =
            Invocation { id, event: Bytes::from(event.to_string()), deadline_ms: deadline_ms.as_millis(), taken };
        let mut exit = self.exit.clone();
        let exited = async move {
            let how = exit.wait_for(Option::is_some).await.map(|how| how.clone()).ok().flatten();
            Failure::Crashed(how.unwrap_or_else(|| "exited".into()))
        };
        tokio::pin!(exited);
        if self.events.send(invocation).await.is_err() {
            return Err(Failure::Crashed("the Runtime API is gone".into()));
        }
        // Until the function takes the event it may still be initialising.
        tokio::select! {
            taken = was_taken => if taken.is_err() { return Err(exited.await) },
            failure = &mut exited => return Err(failure),
            _ = tokio::time::sleep(INIT_TIMEOUT) => return Err(Failure::Crashed("init took longer than 10 s".into())),
        }
        tokio::select! {
            outcome = answered => outcome.unwrap_or_else(|_| Err(Failure::Crashed("no answer".into()))),
            failure = &mut exited => Err(failure),
            _ = tokio::time::sleep(timeout) => Err(Failure::Timeout),
        }
    }

    fn stop(&self) {
        if let Some(kill) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = kill.send(());
        }
        self.server.abort();
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve_runtime_api(listener: tokio::net::TcpListener, state: Arc<RuntimeState>) {
    // Each connection's task ends with this one (aborted with the environment).
    let mut connections = tokio::task::JoinSet::new();
    let Ok(local) = listener.local_addr() else { return };
    while let Ok((stream, peer)) = listener.accept().await {
        let state = state.clone();
        connections.spawn(async move {
            let trusted = from_the_function(&state, peer, local).await;
            if !trusted {
                eprintln!("refused a Lambda Runtime API connection from {peer}: not the authorizer's process");
            }
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(match trusted {
                        true => runtime_api(request, &state).await,
                        false => reply(StatusCode::FORBIDDEN, Bytes::new()),
                    })
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

/// Whether the connection comes from the function's own process (waiting
/// briefly for its pid: it may connect before `spawn` has returned here).
async fn from_the_function(state: &RuntimeState, peer: std::net::SocketAddr, local: std::net::SocketAddr) -> bool {
    let mut function = state.function.clone();
    let started = tokio::time::timeout(Duration::from_secs(1), function.wait_for(Option::is_some)).await;
    let pid = match started {
        Ok(Ok(pid)) => *pid,
        _ => None,
    };
    pid.is_some_and(|pid| super::peer::belongs_to(pid, peer, local))
}

async fn runtime_api(request: Request<hyper::body::Incoming>, state: &RuntimeState) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    };
    if rest == "invocation/next" {
        state.polled.store(true, Ordering::Relaxed);
        let mut events = state.events.lock().await;
        let Some(invocation) = events.recv().await else {
            return reply(StatusCode::GONE, Bytes::new());
        };
        let _ = invocation.taken.send(());
        let mut response = reply(StatusCode::OK, invocation.event);
        let headers = response.headers_mut();
        for (name, value) in [
            ("lambda-runtime-aws-request-id", invocation.id),
            ("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:local:000000000000:function:authorizer".into()),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
        ] {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        return response;
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let json =
        || serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    if rest == "init/error" {
        if let Ok(mut init_error) = state.init_error.lock() {
            *init_error = Some(json().to_string());
        }
        eprintln!("authorizer init error: {}", json());
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    let answer = |id: &str, outcome: Result<Value, Failure>| {
        let mut waiting = state.waiting.lock().ok()?;
        match waiting.take() {
            Some((waiting_id, sender)) if waiting_id == id => sender.send(outcome).ok(),
            other => {
                *waiting = other;
                None
            }
        }
    };
    if let Some(id) = rest.strip_prefix("invocation/").and_then(|r| r.strip_suffix("/response")) {
        answer(id, Ok(json()));
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    if let Some(id) = rest.strip_prefix("invocation/").and_then(|r| r.strip_suffix("/error")) {
        answer(id, Err(Failure::FunctionError(json())));
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    reply(StatusCode::NOT_FOUND, Bytes::new())
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

/// The environment Lambda gives a function (the Runtime API address is added
/// per execution environment), then the stack's own variables.
pub fn lambda_environment(
    function_name: &str,
    memory_mb: i32,
    region: &str,
    stack_variables: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut environment: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local/[$LATEST]0".to_owned()),
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    environment.extend(stack_variables);
    environment
}

/// What Lambda gives a function that calls AWS: its credentials (here the
/// deployer's own, from the SDK's usual chain), and the endpoint overrides
/// the deployer runs with (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`).
pub async fn aws_access(region: &str) -> anyhow::Result<Vec<(String, String)>> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let provider = config.credentials_provider().context("no AWS credentials to run the function with")?;
    let credentials = provider.provide_credentials().await.context("reading the AWS credentials")?;
    let mut variables = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), credentials.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), credentials.secret_access_key().to_owned()),
    ];
    if let Some(token) = credentials.session_token() {
        variables.push(("AWS_SESSION_TOKEN".to_owned(), token.to_owned()));
    }
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        if let Ok(value) = std::env::var(name) {
            variables.push((name.to_owned(), value));
        }
    }
    Ok(variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function that never asks for work: only this test talks to its API.
    fn idle_function() -> PathBuf {
        let directory = std::env::temp_dir().join(format!("runtime-api-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("directory");
        let path = directory.join("bootstrap");
        std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n").expect("script");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn another_local_process_cannot_take_events_or_answer_them() {
        let environment = Environment::start(&idle_function(), &[], None).await.expect("started");
        let base = format!("http://{}/2018-06-01/runtime/invocation", environment.address);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
        let next = client.get(format!("{base}/next")).send().await.map(|r| r.status().as_u16());
        assert_eq!(next.ok(), Some(403), "a process that is not the function asked for its next event");
        let answer = client.post(format!("{base}/local-00000001/response")).body("{}").send().await;
        assert_eq!(answer.map(|r| r.status().as_u16()).ok(), Some(403), "nor may it post an answer");
        environment.stop();
    }

    #[test]
    fn request_ids_are_random() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| request_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| id.len() == 36 && uuid::Uuid::parse_str(id).is_ok()), "{ids:?}");
    }
}
