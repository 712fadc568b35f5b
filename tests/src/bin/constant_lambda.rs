//! The reference point for the runtime benchmark: a `lambda_runtime` function
//! that answers a constant Allow policy, doing no work at all. The difference
//! between it and `bootstrap` is what the authorizer itself costs.

fn main() {}
