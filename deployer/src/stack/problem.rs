//! What is wrong with a stack file ([`StackError`], one [`Problem`] per
//! field), and what an unset `${env:…}` means ([`Unset`]).

use std::fmt;
use std::path::PathBuf;

/// Everything wrong with a stack file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StackError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `authorizer.cache_ttl_seconds`, `api.routes[2].path`, ...
    pub field: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.problems.len() == 1 { "" } else { "s" };
        writeln!(
            f,
            "{} is not a valid stack ({} problem{plural}); nothing was changed:",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            match p.line {
                Some(line) => writeln!(f, "  {}:{line}: {}: {}", self.file.display(), p.field, p.message)?,
                None => writeln!(f, "  {}: {}: {}", self.file.display(), p.field, p.message)?,
            }
        }
        Ok(())
    }
}

/// What a `${env:…}` that is not set means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// An error, naming it.
    Refused,
    /// For an authorizer secret: unknown for this run; elsewhere an error.
    SecretsUnknown,
    /// Every authorizer secret unknown, set or not: for runs that do not
    /// compare them (`output`, `teardown`).
    SecretsIgnored,
}
