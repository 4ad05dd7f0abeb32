//! What can go wrong behind a port.

/// What can go wrong behind a port, in the domain's words. Adapters map SDK errors here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A conditional write lost: someone else changed or created the item first.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Throttled even after the SDK's retries.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A service quota or limit refused the request.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The KMS key cannot be used (missing, disabled, wrong region, no grant).
    #[error("KMS key unusable: {0}")]
    KmsKey(String),
    /// The resource is in a state that does not allow the operation.
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The request itself was rejected as invalid.
    #[error("rejected as invalid: {0}")]
    Invalid(String),
    /// The store served bytes that disagree with its own stored checksum.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Network, timeout or 5xx after retries.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl PortError {
    /// Worth retrying later without any change of configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled(_) | Self::Unavailable(_))
    }

    /// A stable short code for catalog records and alerts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict(_) => "conflict",
            Self::AlreadyExists(_) => "already-exists",
            Self::NotFound(_) => "not-found",
            Self::Throttled(_) => "throttled",
            Self::QuotaExceeded(_) => "quota",
            Self::KmsKey(_) => "kms-key",
            Self::InvalidState(_) => "invalid-state",
            Self::Invalid(_) => "invalid",
            Self::Corrupt(_) => "corrupt",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;
