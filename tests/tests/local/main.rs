//! `deployer local` end to end, as a user runs it: the real deployer and
//! authorizer processes, a JWKS server and a backend on 127.0.0.1, HTTPS
//! clients presenting client certificates. `edge` walks API Gateway's order
//! one step per test; `bypass` is what must not get past the authorizer.
//!
//! One test binary: two would link the deployer (and the AWS SDK) twice.

mod bypass;
mod edge;
