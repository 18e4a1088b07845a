//! Every way a `stacks` command fails, and its exit code. The match in
//! [`StacksError::exit_code`] is exhaustive: a new failure must be given its code here.

use std::path::PathBuf;

use iac_core::state::StateError;
use iac_core::{EngineError, ProviderError, RegistrationErrors, SecretsError};
use kafka_components::{ConfigError, PolicyErrors, RenderError};

/// Success.
pub(crate) const EXIT_OK: u8 = 0;
/// The user must change something: arguments, environment file, policy, plan, lock.
pub(crate) const EXIT_USER: u8 = 1;
/// `preview --detailed-exitcode`: the plan has changes.
pub(crate) const EXIT_CHANGES: u8 = 2;
/// A provider or state failure.
pub(crate) const EXIT_FAILED: u8 = 3;
/// An apply stopped by Ctrl-C (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;
/// An apply stopped by SIGTERM (128 + SIGTERM).
pub(crate) const EXIT_TERMINATED: u8 = 143;

/// A failed command.
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
    /// The program's graph is invalid.
    #[error(transparent)]
    Registration(#[from] RegistrationErrors),
    /// The engine refused or failed; CLI hints are added to the library's message.
    #[error("{0}{hint}", hint = hint(.0))]
    Engine(#[from] EngineError),
    /// The AWS provider could not be set up.
    #[error("cannot reach AWS: {0}")]
    Connect(ProviderError),
    /// What an earlier run left unfinished could not be looked up, so nothing is planned.
    #[error(
        "cannot resolve the unfinished operation on `{name}` an earlier run left: {error}; nothing was changed: run again when the provider answers"
    )]
    Unresolved {
        /// The resource.
        name: String,
        /// Why the lookup failed.
        error: String,
    },
    /// A saved plan cannot be read or written.
    #[error("{}: {reason}", path.display())]
    PlanFile {
        /// The plan file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
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
    /// `state export` of a stack that has no state.
    #[error("stack `{stack}` has no state here: check --backend / --state-dir")]
    NoState {
        /// The stack.
        stack: String,
    },
    /// `state import` into a stack that has state.
    #[error(
        "stack `{stack}` has state here already: import only into an empty place (export it first to keep it)"
    )]
    StateExists {
        /// The stack.
        stack: String,
    },
    /// A change needs confirmation and nobody can give it.
    #[error("apply needs confirmation and standard input is not a terminal: pass --yes")]
    NeedsConfirmation,
    /// The configuration could not be rendered or written.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Reading the answer, printing, or removing the rendered folder failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl StacksError {
    /// The documented exit code (docs/cli.md, "Exit codes").
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            StacksError::Config(_)
            | StacksError::Policy { .. }
            | StacksError::Registration(_)
            | StacksError::PlanFile { .. }
            | StacksError::Build { .. }
            | StacksError::NoState { .. }
            | StacksError::StateExists { .. }
            | StacksError::NeedsConfirmation => EXIT_USER,
            StacksError::Engine(e) if e.is_user_error() => EXIT_USER,
            StacksError::Connect(e) if e.code.as_deref() == Some(iac_aws::CONFIGURATION_ERROR) => {
                EXIT_USER
            }
            StacksError::Render(e) if e.is_user_error() => EXIT_USER,
            StacksError::Engine(_)
            | StacksError::Render(_)
            | StacksError::Connect(_)
            | StacksError::Unresolved { .. }
            | StacksError::Io { .. } => EXIT_FAILED,
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| StacksError::Io { what, source }
    }
}

/// A backend's failure outside an engine call (`state export`, `state import`, connecting),
/// reported as the engine reports it.
impl From<StateError> for StacksError {
    fn from(error: StateError) -> Self {
        StacksError::Engine(EngineError::from(error))
    }
}

/// What the CLI adds to the engine's message: the flag or variable that acts on it.
fn hint(error: &EngineError) -> &'static str {
    match error {
        EngineError::State(StateError::Locked { .. }) => {
            " (stacks: --lock-timeout waits for it; --force-unlock breaks a lock left on another host)"
        }
        EngineError::Secrets(SecretsError::NoPassphrase { .. })
        | EngineError::State(StateError::Secrets(SecretsError::NoPassphrase { .. })) => {
            " (stacks: set IAC_PASSPHRASE)"
        }
        _ => "",
    }
}
