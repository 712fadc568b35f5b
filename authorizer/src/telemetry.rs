//! The function's logging: one JSON line per event, filtered by `RUST_LOG`,
//! with one rule `RUST_LOG` cannot lift: other crates log at most at `info`.
//!
//! Below `info`, the Lambda runtime logs every raw event (Authorization
//! header, DPoP proof and client certificate included) and the HTTP stack
//! logs the requests it sends (introspection credentials included). Our own
//! code never logs a token, a secret or a certificate at any level, so only
//! its own targets may go lower.
//!
//! Both filters are global and decide per call site, once: a disabled call
//! site costs nothing on the per-request path.

use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Targets allowed below `info`: this crate's modules and the `bootstrap` binary.
fn is_ours(target: &str) -> bool {
    let crate_or_module =
        |name: &str| target.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
    crate_or_module("authorizer") || crate_or_module("bootstrap")
}

/// Whether an event may be written whatever `RUST_LOG` says.
pub fn may_log(metadata: &Metadata<'_>) -> bool {
    *metadata.level() <= Level::INFO || is_ours(metadata.target())
}

/// The rule as a global filter layer.
struct DependenciesAtInfo;

impl<S: Subscriber> Layer<S> for DependenciesAtInfo {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if may_log(metadata) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        may_log(metadata)
    }
}

/// Installs the subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time();
    tracing_subscriber::registry().with(DependenciesAtInfo).with(filter).with(format).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_targets_go_below_info() {
        for ours in ["authorizer", "authorizer::jwks", "bootstrap"] {
            assert!(is_ours(ours), "{ours}");
        }
        for theirs in ["lambda_runtime::layers::api_response", "hyper_util::client", "reqwest", "authorizerx"] {
            assert!(!is_ours(theirs), "{theirs}");
        }
    }
}
