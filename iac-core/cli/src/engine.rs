//! The engine a run works on: the program's providers, the state backend (files or a
//! bucket), the passphrase and the lock.

use iac_core::state::StateBackend;
use iac_core::{Engine, FileBackend, Passphrase, Providers};
use iac_state_s3::S3Backend;

use crate::cli::Target;
use crate::error::Error;
use crate::program::StackProgram;

impl<P: StackProgram> Target<P> {
    /// The engine on this target's backend with `providers`: the passphrase of
    /// `IAC_PASSPHRASE`, the lock timeout, and the stack's lock broken (`--force-unlock`) or
    /// taken over from a run on this host that is gone, saying so.
    pub fn engine(&self, providers: Providers) -> Result<Engine, Error> {
        let mut engine = Engine::new(providers, self.backend()?);
        if let Some(passphrase) = Passphrase::from_env() {
            engine = engine.with_passphrase(passphrase);
        }
        if let Some(timeout) = self.lock_timeout {
            engine = engine.with_lock_timeout(timeout);
        }
        let stack = &self.stack;
        if self.force_unlock
            && let Some(holder) = engine.break_lock(stack)?
        {
            eprintln!(
                "broke the lock of stack `{stack}` held by pid {} on {} ({}) since {}",
                holder.pid, holder.host, holder.operation, holder.since
            );
        } else if let Some(holder) = engine.take_over_stale_lock(stack)? {
            eprintln!(
                "took over the lock of stack `{stack}` left by pid {} ({}, since {}): that run is gone",
                holder.pid, holder.operation, holder.since
            );
        }
        Ok(engine)
    }

    /// Where state is kept: `--backend`'s bucket, else the files of `--state-dir`.
    pub(crate) fn backend(&self) -> Result<Box<dyn StateBackend>, Error> {
        Ok(match &self.backend {
            Some(url) => Box::new(S3Backend::connect(url)?),
            None => Box::new(FileBackend::new(&self.state_dir)),
        })
    }

    /// An engine for the verbs that call no provider, only read or change the state:
    /// `outputs`, the state verbs, a program's own verb that reads what was applied.
    pub fn state_engine(&self) -> Result<Engine, Error> {
        self.engine(Providers::new())
    }
}
