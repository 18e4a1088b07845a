//! `stacks`: preview, apply, destroy, refresh and show the outputs of a Kafka platform
//! environment (`stacks/envs/<env>.toml`).
//!
//! Glue only: parse arguments, load the environment, call `kafka-components` and `iac-core`,
//! print. Exit codes ([`error`]): 0 success; 1 the user must change something (arguments,
//! environment file, policy, plan, lock, passphrase); 2 `preview --detailed-exitcode` found
//! changes; 3 a provider or state failure (some steps failed).

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod environment;
mod error;
mod interrupt;
mod print;
mod state_verbs;
mod verbs;
mod wiring;

use cli::{Cli, Verb};
use error::{EXIT_FAILED, EXIT_OK, EXIT_USER, StacksError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers; any other argument error is the user's to fix
            // (exit 1: clap's own 2 means "changes" for `--detailed-exitcode`).
            let code = if e.use_stderr() { EXIT_USER } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs the verb the command line names.
async fn run(cli: Cli) -> Result<u8, StacksError> {
    match cli.verb {
        Verb::Preview {
            target,
            planning,
            plan_out,
            detailed_exitcode,
        } => verbs::preview(&target, &planning, plan_out.as_deref(), detailed_exitcode).await,
        Verb::Apply {
            target,
            run,
            planning,
            plan,
        } => verbs::apply(&target, &run, &planning, plan.as_deref()).await,
        Verb::Destroy {
            target,
            run,
            targets,
        } => verbs::destroy(&target, &run, &targets).await,
        Verb::Refresh { target, targeting } => verbs::refresh(&target, &targeting).await,
        Verb::Import {
            target,
            type_token,
            name,
            id,
        } => verbs::import(&target, &type_token, &name, &id).await,
        Verb::Render { target } => verbs::render(&target).await,
        Verb::Outputs {
            target,
            show_secrets,
        } => verbs::outputs(&target, show_secrets).await,
        Verb::State { action } => state_verbs::run(&action).await,
    }
}
