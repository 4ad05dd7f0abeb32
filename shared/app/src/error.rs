//! The fixed vocabulary of function errors. Lambda reports `error_type` as `errorType`,
//! which Step Functions Retry/Catch and alarms match on.

use std::fmt;

use lifeboat_ports::PortError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The input was malformed or unknown: fix the caller, do not retry.
    Invalid,
    /// Something the input names does not exist.
    NotFound,
    /// Lost a race or a precondition no longer holds.
    Conflict,
    /// Transient: throttling, 5xx, a held lease. Retry with backoff.
    Retryable,
    /// Configuration is missing or wrong (a KMS key, a policy, an env var).
    Misconfigured,
    /// A bug or an unexpected state; logged with the request id.
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "Invalid",
            Self::NotFound => "NotFound",
            Self::Conflict => "Conflict",
            Self::Retryable => "Retryable",
            Self::Misconfigured => "Misconfigured",
            Self::Internal => "Internal",
        }
    }
}

/// The error every Lifeboat function returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FunctionError {
    pub kind: ErrorType,
    pub message: String,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// A configuration that cannot be used, met at run time: `Misconfigured`.
impl From<crate::config::ConfigError> for FunctionError {
    fn from(e: crate::config::ConfigError) -> Self {
        Self::misconfigured(e.to_string())
    }
}

impl FunctionError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorType::NotFound, message)
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Retryable, message)
    }

    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::new(ErrorType::Misconfigured, message)
    }
}

impl From<PortError> for FunctionError {
    fn from(e: PortError) -> Self {
        let kind = match &e {
            PortError::Conflict(_) | PortError::AlreadyExists(_) => ErrorType::Conflict,
            PortError::NotFound(_) => ErrorType::NotFound,
            PortError::Throttled(_) | PortError::Unavailable(_) | PortError::QuotaExceeded(_) => ErrorType::Retryable,
            PortError::KmsKey(_) => ErrorType::Misconfigured,
            PortError::InvalidState(_) | PortError::Invalid(_) | PortError::Corrupt(_) => ErrorType::Internal,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<FunctionError> for lambda_runtime::Diagnostic {
    fn from(e: FunctionError) -> Self {
        Self {
            error_type: e.kind.as_str().to_owned(),
            error_message: e.message,
        }
    }
}
