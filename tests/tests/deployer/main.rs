//! The deployer end to end, as the built `deployer` binary, against moto
//! through the recording proxy or the AWS-like layer: one module per
//! subject, their helpers in `e2e::deploy`.
//!
//! One test binary rather than one per subject: each would link the whole
//! AWS SDK again, and the subjects share the test threads instead of each
//! binary waiting for its own slowest test. The CPU-heavy suites
//! (`lambda_build`, `deployer_chaos`) stay binaries of their own.

mod apply;
mod aws;
mod cutover;
mod dns;
mod edge;
mod first_run;
mod logs;
mod pipeline;
mod plan_binds;
mod policy;
mod replay_table;
mod rest_api;
mod runs;
mod secrets;
