//! API Gateway's per-account quotas, as token buckets on the scaled clock.

use std::time::{Duration, Instant};

use super::call::Call;
use super::{AwsLike, State};

/// A token bucket: `capacity` calls, refilled at one per `every`.
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) capacity: f64,
    pub(super) every: Duration,
    pub(super) at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() / self.every.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl AwsLike {
    /// API Gateway's quotas per account (the note's table), on the scaled
    /// clock like everything else: the deployer's backoff is scaled too, so
    /// a 10-per-second rate becomes 1 000 per second here (and is not met),
    /// and one domain change per 30 s becomes one per 300 ms.
    pub(super) fn within_quota(&self, call: &Call<'_>, state: &mut State) -> bool {
        let (name, capacity, every) = if call.rest("POST", &["domainnames"]).is_some()
            || call.rest("PATCH", &["domainnames", "*"]).is_some()
            || call.rest("DELETE", &["domainnames", "*"]).is_some()
        {
            ("domain names", 1.0, Duration::from_secs(30))
        } else if call.rest("DELETE", &["restapis", "*"]).is_some() {
            ("DeleteRestApi", 1.0, Duration::from_secs(30))
        } else if call.rest("POST", &["restapis", "*", "deployments"]).is_some() {
            ("CreateDeployment", 1.0, Duration::from_secs(5))
        } else if call.rest("GET", &["restapis", "*", "resources"]).is_some() {
            ("GetResources", 5.0, Duration::from_millis(400))
        } else if call.rest("POST", &["restapis", "*", "resources", "*"]).is_some() {
            ("CreateResource", 5.0, Duration::from_millis(200))
        } else if call.rest("DELETE", &["restapis", "*", "resources", "*"]).is_some() {
            ("DeleteResource", 5.0, Duration::from_millis(200))
        } else if call.rest("POST", &["restapis"]).is_some() {
            ("CreateRestApi", 1.0, Duration::from_secs(3))
        } else {
            ("control plane", 40.0, Duration::from_millis(100))
        };
        let every = self.scaled(every);
        let general = state.quotas.entry("control plane").or_insert_with(|| Bucket {
            tokens: 40.0,
            capacity: 40.0,
            every: self.scaled(Duration::from_millis(100)),
            at: Instant::now(),
        });
        if !general.take() {
            return false;
        }
        if name == "control plane" {
            return true;
        }
        let bucket = state.quotas.entry(name).or_insert_with(|| Bucket {
            tokens: capacity,
            capacity,
            every,
            at: Instant::now(),
        });
        bucket.take()
    }
}
