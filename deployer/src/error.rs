//! SDK failures, read in one place: the service's code and message (not the
//! SDK's generic "service error" wrapper), and "not found" for every service,
//! so resource modules ask `.found()?` instead of matching error names.

use std::fmt::Debug;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// "Code: message" of an SDK error, or its display form, with the run's
/// secrets masked (a service may quote what it was sent).
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: Debug>(error: &SdkError<E, R>) -> String {
    crate::stack::masked::masked(&match error.as_service_error() {
        Some(service) => {
            format!("{}: {}", service.code().unwrap_or("UnknownError"), service.message().unwrap_or("(no message)"))
        }
        None => format!("{error}: {}", std::error::Error::source(error).map(ToString::to_string).unwrap_or_default()),
    })
}

/// The service error code, if any.
pub fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}

/// The codes with which the services this deployer calls say "no such thing".
const NOT_FOUND: &[&str] = &[
    "NoSuchEntity",                // IAM
    "ResourceNotFoundException",   // Lambda, ACM, CloudWatch Logs
    "NotFoundException",           // API Gateway
    "NoSuchBucket",                // S3
    "NoSuchKey",                   // S3
    "NotFound",                    // S3 HeadObject / HeadBucket (no body, status only)
    "WAFNonexistentItemException", // WAFv2
];

/// Whether the service says what a create asked for exists already: made by
/// a run a moment ago, or by this create's first attempt whose answer was
/// lost (the SDK then sent it again). A "concurrent modification"
/// `ConflictException` is never this: it is retried (`retry.rs`).
pub fn already_exists<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    let Some(service) = error.as_service_error() else { return false };
    let message = service.message().unwrap_or_default();
    match service.code().unwrap_or_default() {
        "EntityAlreadyExists"
        | "BucketAlreadyOwnedByYou"
        | "WAFDuplicateItemException"
        | "ResourceAlreadyExistsException" => true, // …, CloudWatch Logs
        // Lambda: "Function already exist: NAME" (the same code means "an
        // update is in progress" too).
        "ResourceConflictException" => message.contains("already exist"),
        // API Gateway: a stage, base path, method, authorizer name or domain
        // that exists; a path part under a parent that has it.
        "ConflictException" | "BadRequestException" => {
            message.contains("already exist") || message.contains("already has this name")
        }
        _ => false,
    }
}

/// Whether the service said the thing does not exist.
pub fn is_not_found<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    code(error).is_some_and(|c| NOT_FOUND.contains(&c))
}

/// Reading SDK results: every error gets the operation's name and the
/// service's own words.
pub trait SdkResult<T> {
    /// The value, or an error naming `operation`.
    fn aws(self, operation: &str) -> anyhow::Result<T>;
    /// `None` when the service says it does not exist.
    fn found(self, operation: &str) -> anyhow::Result<Option<T>>;
    /// For deletes: "already gone" is success.
    fn gone(self, operation: &str) -> anyhow::Result<()>;
}

impl<T, E, R> SdkResult<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    fn aws(self, operation: &str) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{operation}: {}", describe(&e)))
    }

    fn found(self, operation: &str) -> anyhow::Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{operation}: {}", describe(&e))),
        }
    }

    fn gone(self, operation: &str) -> anyhow::Result<()> {
        self.found(operation).map(|_| ())
    }
}

/// A step that could not finish in this run through nobody's fault: it
/// waits for something outside the deployer's reach (a DNS record someone
/// has yet to create). The message says what it waits for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LeftForLater(pub String);
