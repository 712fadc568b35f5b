//! One JSON line per request on stdout, like an API Gateway access log:
//! status, source, route (`resourcePath`, as the stage's access log names
//! it), the client certificate's subject DN, authorizer latency and cache
//! hit, integration latency. Never a header value, so never a token or a
//! certificate. With `--access-log FILE`, each line goes to FILE too (what
//! `deployer verify --access-log` reads, as it reads the stage's log in
//! CloudWatch).

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct AccessLog {
    started: Instant,
    line: serde_json::Map<String, Value>,
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e5).round() / 100.0
}

impl AccessLog {
    pub fn start(request_id: &str, source: IpAddr, method: &str, path: &str, subject_dn: Option<&str>) -> AccessLog {
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let line = json!({
            "requestId": request_id,
            "requestTimeEpochMs": time.as_millis() as u64,
            "sourceIp": source.to_string(),
            "httpMethod": method,
            "path": path,
            "route": null,
            "resourcePath": null,
            "clientCertSubjectDN": subject_dn,
            "authorizerLatencyMs": null,
            "authorizerCacheHit": null,
            "integrationLatencyMs": null,
        });
        let Value::Object(line) = line else { unreachable!("a JSON object literal") };
        AccessLog { started: Instant::now(), line }
    }

    pub fn route(&mut self, template: &str) {
        self.line.insert("route".into(), template.into());
        self.line.insert("resourcePath".into(), template.into());
    }

    /// `latency` is None on a cache hit (the authorizer was not called).
    pub fn authorizer(&mut self, latency: Option<Duration>, cache_hit: bool) {
        self.line.insert("authorizerLatencyMs".into(), latency.map(millis).into());
        self.line.insert("authorizerCacheHit".into(), cache_hit.into());
    }

    pub fn principal(&mut self, principal: Option<&str>) {
        self.line.insert("principalId".into(), principal.into());
    }

    pub fn integration(&mut self, latency: Duration) {
        self.line.insert("integrationLatencyMs".into(), millis(latency).into());
    }

    pub fn note(&mut self, note: &str) {
        self.line.insert("note".into(), note.into());
    }

    pub fn finish(mut self, status: u16) {
        self.line.insert("status".into(), status.into());
        self.line.insert("latencyMs".into(), millis(self.started.elapsed()).into());
        write_line(Value::Object(self.line).to_string());
    }
}

/// The file each line also goes to (`deployer local --access-log`).
static ALSO_TO: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Appends every later line to `path` as well.
pub fn also_to(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("--access-log {}", path.display()))?;
    let _ = ALSO_TO.set(Mutex::new(file));
    Ok(())
}

/// Writes `line` to stdout (and the `--access-log` file), whole (one write:
/// lines of concurrent requests never interleave).
pub fn write_line(mut line: String) {
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    if let Some(file) = ALSO_TO.get() {
        let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
    }
}
