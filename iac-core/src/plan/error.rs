//! Why a plan cannot be made.

use crate::errors::ErrorList;
use crate::output::EvalError;
use crate::provider::ProviderError;

/// A problem that makes a plan impossible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No provider handles the type.
    #[error(
        "resource `{resource}`: no provider is registered for type `{type_token}`: register one for this type token"
    )]
    NoProvider {
        /// The resource.
        resource: String,
        /// The type token.
        type_token: String,
    },
    /// The provider refused an input.
    #[error("resource `{resource}` ({type_token}): {}{reason}", if property.is_empty() { String::new() } else { format!("`{property}`: ") })]
    Check {
        /// The resource.
        resource: String,
        /// Its type token.
        type_token: String,
        /// The input at fault.
        property: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An input could not be evaluated.
    #[error("resource `{resource}`: input `{property}`: {error}")]
    Eval {
        /// The resource.
        resource: String,
        /// The input.
        property: String,
        /// Why.
        error: EvalError,
    },
    /// A protected resource would be deleted or replaced.
    #[error(
        "resource `{resource}` is protected and the plan would {action} it{reason}: remove its `protect` option first, or undo the change"
    )]
    Protected {
        /// The resource.
        resource: String,
        /// `delete` or `replace`.
        action: &'static str,
        /// What forces it.
        reason: String,
    },
    /// A replacement was asked for a resource that cannot be replaced.
    #[error("resource `{resource}` cannot be replaced: {reason}")]
    CannotReplace {
        /// The name given.
        resource: String,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// A target is neither in the program nor recorded.
    #[error(
        "target `{resource}`: the program has no resource of that name and the stack records none"
    )]
    UnknownTarget {
        /// The name given.
        resource: String,
    },
    /// A targeted plan would replace or delete a resource that recorded resources it does
    /// not cover depend on: they would be left pointing at what is gone.
    #[error(
        "resource `{resource}` would be {action}d, but {} depend on it and are not targeted: target them too, or target with dependents",
        dependents.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
    )]
    UntargetedDependents {
        /// The resource.
        resource: String,
        /// `replace` or `delete`.
        action: &'static str,
        /// The recorded dependents not covered.
        dependents: Vec<String>,
    },
    /// The provider failed during planning.
    #[error("resource `{resource}`: provider {action} failed: {error}")]
    Provider {
        /// The resource.
        resource: String,
        /// `diff` or `read`.
        action: &'static str,
        /// The provider's error.
        error: ProviderError,
    },
    /// A data source found nothing.
    #[error("data source `{resource}` ({type_token}) matched nothing: check its filter inputs")]
    DataSourceNotFound {
        /// The data source.
        resource: String,
        /// Its type token.
        type_token: String,
    },
}

impl PlanError {
    /// Whether the program or its configuration must change, as opposed to a provider call
    /// (a read or a diff) having failed.
    pub fn is_user_error(&self) -> bool {
        match self {
            PlanError::NoProvider { .. }
            | PlanError::Check { .. }
            | PlanError::Eval { .. }
            | PlanError::Protected { .. }
            | PlanError::CannotReplace { .. }
            | PlanError::UnknownTarget { .. }
            | PlanError::UntargetedDependents { .. }
            | PlanError::DataSourceNotFound { .. } => true,
            PlanError::Provider { .. } => false,
        }
    }
}

/// Every problem found while planning.
pub type PlanErrors = ErrorList<PlanError>;
