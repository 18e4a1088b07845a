//! Every way a run fails, and its exit code. The match in [`Error::exit_code`] is exhaustive:
//! a new failure must be given its code here.

use std::path::PathBuf;

use iac_core::state::StateError;
use iac_core::{EngineError, RegistrationErrors, SecretsError};

/// The exit codes, as docs/cli.md documents them.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The user must change something: arguments, environment, policy, plan, lock.
    pub const USER: u8 = 1;
    /// `preview --detailed-exitcode`: the plan has changes.
    pub const CHANGES: u8 = 2;
    /// A provider or state failure.
    pub const FAILED: u8 = 3;
    /// An apply stopped by Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
    /// An apply stopped by SIGTERM (128 + SIGTERM).
    pub const TERMINATED: u8 = 143;
}

/// A boxed failure of the program's own.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failed run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program's graph is invalid.
    #[error(transparent)]
    Registration(#[from] RegistrationErrors),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    /// A state verb on a stack that has no state.
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
    /// Reading the answer or a file, or printing, failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Something the user must change, as the program found it (its environment, a policy).
    #[error("{0}")]
    User(Cause),
    /// A failure of the program's own that is no mistake of the user (a build tool, a
    /// provider it connects).
    #[error("{0}")]
    Failed(Cause),
}

impl Error {
    /// Something of the program's own the user must change: exits 1.
    pub fn user(cause: impl Into<Cause>) -> Self {
        Error::User(cause.into())
    }

    /// A failure of the program's own that is no mistake of the user: exits 3.
    pub fn failed(cause: impl Into<Cause>) -> Self {
        Error::Failed(cause.into())
    }

    /// An OS error while `what` was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// The documented exit code (docs/cli.md, "Exit codes").
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Registration(_)
            | Error::PlanFile { .. }
            | Error::NoState { .. }
            | Error::StateExists { .. }
            | Error::NeedsConfirmation
            | Error::User(_) => exit::USER,
            Error::Engine(e) if e.is_user_error() => exit::USER,
            Error::Engine(_) | Error::Unresolved { .. } | Error::Io { .. } | Error::Failed(_) => {
                exit::FAILED
            }
        }
    }

    /// What the command `name` adds to the engine's message: the flag or variable that acts
    /// on it.
    pub(crate) fn hint(&self, name: &str) -> String {
        let hint = match self {
            Error::Engine(EngineError::State(StateError::Locked { .. })) => {
                "--lock-timeout waits for it; --force-unlock breaks a lock left on another host"
            }
            Error::Engine(
                EngineError::Secrets(SecretsError::NoPassphrase { .. })
                | EngineError::State(StateError::Secrets(SecretsError::NoPassphrase { .. })),
            ) => "set IAC_PASSPHRASE",
            _ => return String::new(),
        };
        format!(" ({name}: {hint})")
    }
}

/// A backend's failure outside an engine call (`state export`, `state import`, connecting),
/// reported as the engine reports it.
impl From<StateError> for Error {
    fn from(error: StateError) -> Self {
        Error::Engine(EngineError::from(error))
    }
}
