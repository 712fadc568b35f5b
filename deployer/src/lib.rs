//! The deployer: converges AWS to stack.yaml. The binary (`main.rs`) is only
//! the command line; everything else is here so tests can reach it.
//!
//! stack.yaml → [`stack`] (validated, no AWS call) → [`commands::desired`]
//! (every kind's wanted resources) → [`observe`] (what exists) →
//! [`planner`] (pure) → [`executor`] (does exactly the plan), under [`lock`].

pub mod aws;
pub mod cli;
pub mod commands;
pub mod error;
pub mod executor;
pub mod grants;
pub mod graph;
pub mod local;
pub mod lock;
pub mod observe;
pub mod order;
pub mod outputs;
pub mod package;
pub mod plan;
pub mod planner;
pub mod policy;
pub mod resources;
pub mod retry;
pub mod stack;
pub mod verify;
