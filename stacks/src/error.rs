//! How the platform's own failures end a run: each is the user's to fix (exit 1) or a
//! failure (exit 3), in one exhaustive match.

use std::path::PathBuf;

use iac_core::ProviderError;
use kafka_components::{ConfigError, PolicyErrors, RenderError};

/// A failure of the platform's own, beside the engine's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StacksError {
    /// The environment file is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The environment breaks a policy.
    #[error("{}: refused by policy:\n{errors}", file.display())]
    Policy {
        /// The environment file.
        file: PathBuf,
        /// Every violation.
        errors: PolicyErrors,
    },
    /// The AWS provider could not be set up.
    #[error("cannot reach AWS: {0}")]
    Connect(ProviderError),
    /// The environment's build command (`local.build`, `deploy.build`) failed.
    #[error("`{command}` ({field} in {}) failed ({status}): fix the build, then run again", file.display())]
    Build {
        /// The command.
        command: String,
        /// Its field in the environment file.
        field: &'static str,
        /// The environment file.
        file: PathBuf,
        /// How it ended.
        status: String,
    },
    /// The configuration could not be rendered or written.
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl From<StacksError> for iac_cli::Error {
    fn from(error: StacksError) -> Self {
        let user = match &error {
            StacksError::Config(_) | StacksError::Policy { .. } | StacksError::Build { .. } => true,
            StacksError::Connect(e) => e.code.as_deref() == Some(iac_aws::CONFIGURATION_ERROR),
            StacksError::Render(e) => e.is_user_error(),
        };
        if user {
            iac_cli::Error::user(error)
        } else {
            iac_cli::Error::failed(error)
        }
    }
}
