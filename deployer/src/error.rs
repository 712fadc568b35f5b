//! Error text for SDK failures: the service's code and message, not the
//! SDK's generic "service error" wrapper.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// "Code: message" of an SDK error, or its display form.
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error.as_service_error() {
        Some(service) => {
            format!("{}: {}", service.code().unwrap_or("UnknownError"), service.message().unwrap_or("(no message)"))
        }
        None => format!("{error}: {}", std::error::Error::source(error).map(ToString::to_string).unwrap_or_default()),
    }
}

/// The service error code, if any.
pub fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error.as_service_error().and_then(|e| e.code())
}
