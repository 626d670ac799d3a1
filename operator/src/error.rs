//! The operator library's error type: one enum, one variant per failure the reconciler reports.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serializing {what}: {reason}")]
    Serialize { what: &'static str, reason: String },
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error("lost leadership: {0}")]
    LostLeadership(String),
}

impl Error {
    /// A short PascalCase reason for Events and conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiError",
            Error::Serialize { .. } => "RenderFailed",
            Error::MissingField(_) => "InvalidObject",
            Error::LostLeadership(_) => "LostLeadership",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
