//! What a program tells the command line: how a stack's environment is loaded, what it
//! registers, which providers it runs on, and what it adds of its own.

use std::future::Future;

use clap::{Args, Subcommand};
use iac_core::{Providers, Stack};

use crate::error::Error;

/// A stack program, as the command line runs it.
///
/// A run names a stack; [`load`](Self::load) makes its environment from the name and the
/// program's own flags, [`register`](Self::register) registers its resources on a stack of that
/// name, and [`providers`](Self::providers) connects what they run on. The provided hooks let a
/// program leave steps out of a run, build before planning, and print what a person needs
/// after a verb; each does nothing unless the program says otherwise.
pub trait StackProgram {
    /// The command's name, as `--help` and the hints of errors show it.
    const NAME: &'static str;
    /// One line on what the command manages, for `--help`.
    const ABOUT: &'static str;
    /// `--version`: the program's own (`env!("CARGO_PKG_VERSION")`).
    const VERSION: &'static str;
    /// How `--help` names the stack argument.
    const STACK_ARG: &'static str = "STACK";
    /// What `--help` says of the stack argument.
    const STACK_HELP: &'static str = "The stack: its name in the state backend";

    /// Flags of the program's own on every verb that names a stack ([`NoFlags`](crate::NoFlags)
    /// for none).
    type Flags: Args;
    /// Flags of the program's own on the verbs that plan or read (`preview`, `apply`,
    /// `refresh`), read by [`left_as_recorded`](Self::left_as_recorded) and
    /// [`before_plan`](Self::before_plan).
    type PlanFlags: Args;
    /// Verbs of the program's own, beside the standard ones ([`NoVerbs`](crate::NoVerbs) for
    /// none), run by [`run_verb`](Self::run_verb).
    type Verbs: Subcommand;
    /// A stack's environment: what registering and connecting read.
    type Env;

    /// The environment of stack `stack`; a mistake in it is [`Error::user`].
    fn load(&self, stack: &str, flags: &Self::Flags) -> Result<Self::Env, Error>;

    /// Registers the stack's resources and outputs on `stack` (named as the run's stack).
    /// The environment may keep what the program shows after an apply.
    fn register(&self, env: &mut Self::Env, stack: &mut Stack) -> Result<(), Error>;

    /// The providers the stack's resources run on.
    fn providers(&self, env: &Self::Env) -> impl Future<Output = Result<Providers, Error>>;

    /// Resources a run leaves as recorded (every other one is covered), as the plan flags
    /// ask: none by default.
    fn left_as_recorded(&self, env: &Self::Env, flags: &Self::PlanFlags) -> Vec<String> {
        let _ = (env, flags);
        Vec::new()
    }

    /// Runs before `preview` and `apply` register the program: a build of what it deploys,
    /// say. `flags` is `None` for `apply --plan`; with `json`, print nothing on standard
    /// output.
    fn before_plan(
        &self,
        env: &Self::Env,
        flags: Option<&Self::PlanFlags>,
        json: bool,
    ) -> Result<(), Error> {
        let _ = (env, flags, json);
        Ok(())
    }

    /// After a preview's plan is printed as text.
    fn after_preview(&self, env: &Self::Env) {
        let _ = env;
    }

    /// After an apply that succeeded, printed as text: what the stack offers a person.
    fn after_apply(&self, env: &Self::Env) -> Result<(), Error> {
        let _ = env;
        Ok(())
    }

    /// After a destroy of every resource succeeded: what the program keeps beside the
    /// stack, removed.
    fn after_destroy(&self, env: &Self::Env) -> Result<(), Error> {
        let _ = env;
        Ok(())
    }

    /// Runs one of the program's own verbs; returns the exit code.
    fn run_verb(&self, verb: Self::Verbs) -> impl Future<Output = Result<u8, Error>> {
        let _ = verb;
        async {
            Err(Error::user(format!(
                "{} has no verbs of its own beside the standard ones",
                Self::NAME
            )))
        }
    }
}
