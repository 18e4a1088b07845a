//! The engine an environment runs on: its providers, its state backend (files or a bucket),
//! the passphrase and the lock.

use iac_aws::AwsProvider;
use iac_core::state::StateBackend;
use iac_core::{Engine, FileBackend, Passphrase, Providers};
use iac_local::LocalProvider;
use iac_state_s3::S3Backend;
use iac_tls::TlsProvider;

use crate::cli::Target;
use crate::environment::Env;
use crate::error::StacksError;

pub(crate) async fn engine(env: &Env, target: &Target) -> Result<Engine, StacksError> {
    let mut providers = Providers::new();
    LocalProvider::new().register(&mut providers);
    TlsProvider::new().register(&mut providers);
    if let Some(site) = env.config.aws() {
        AwsProvider::connect(site.aws.settings())
            .await
            .map_err(StacksError::Connect)?
            .register(&mut providers);
    }
    engine_with(providers, target)
}

/// The engine on `target`'s backend with `providers`: the passphrase of the environment, the
/// lock timeout, and the stack's lock broken (`--force-unlock`) or taken over from a run on
/// this host that is gone, saying so.
pub(crate) fn engine_with(providers: Providers, target: &Target) -> Result<Engine, StacksError> {
    let mut engine = Engine::new(providers, backend(target)?);
    if let Some(passphrase) = Passphrase::from_env() {
        engine = engine.with_passphrase(passphrase);
    }
    if let Some(timeout) = target.lock_timeout {
        engine = engine.with_lock_timeout(timeout);
    }
    let stack = &target.env;
    if target.force_unlock
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
pub(crate) fn backend(target: &Target) -> Result<Box<dyn StateBackend>, StacksError> {
    Ok(match &target.backend {
        Some(url) => Box::new(S3Backend::connect(url)?),
        None => Box::new(FileBackend::new(&target.state_dir)),
    })
}

/// An engine for the state verbs: they call no provider.
pub(crate) fn state_engine(target: &Target) -> Result<Engine, StacksError> {
    engine_with(Providers::new(), target)
}
