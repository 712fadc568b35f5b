//! The deployer: converges AWS to stack.yaml. The binary (`main.rs`) is only
//! the command line; everything else is here so tests can reach it.

pub mod aws;
pub mod engine;
pub mod error;
pub mod package;
pub mod plan;
mod resources;
pub mod stack;
