//! The command line of a stack program.
//!
//! A program implements [`StackProgram`] — how a stack's environment is loaded from its name,
//! which resources it registers, which providers it runs on — and [`main`] gives it every verb
//! and flag: `preview` (saved plans, `--detailed-exitcode`), `apply` (the confirmation
//! prompt, a saved plan, progress), `destroy`, `refresh`, `outputs` (`--json`,
//! `--show-secrets`), `import`, the `state` verbs, `--target`, `--replace`, `--refresh`,
//! `--lock-timeout`, `--force-unlock`, state in files or in S3 (`--backend`), the passphrase
//! (`IAC_PASSPHRASE`), a first Ctrl-C that finishes what is in flight, and the exit codes of
//! [`exit`]. `docs/cli.md` documents them once, for every program.
//!
//! ```no_run
//! use iac_cli::{Error, NoFlags, NoVerbs, StackProgram};
//! use iac_core::{Providers, Stack};
//!
//! struct Files;
//!
//! impl StackProgram for Files {
//!     const NAME: &'static str = "files";
//!     const ABOUT: &'static str = "A folder of files";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     type Flags = NoFlags;
//!     type PlanFlags = NoFlags;
//!     type Verbs = NoVerbs;
//!     type Env = String;
//!
//!     fn load(&self, stack: &str, _: &NoFlags) -> Result<String, Error> {
//!         Ok(stack.to_owned())
//!     }
//!
//!     fn register(&self, _: &mut String, _: &mut Stack) -> Result<(), Error> {
//!         Ok(())
//!     }
//!
//!     async fn providers(&self, _: &String) -> Result<Providers, Error> {
//!         Ok(Providers::new())
//!     }
//! }
//!
//! // The allocator `stacks` uses: planning 100,000 resources takes half the time and
//! // two thirds of the memory it takes on the system's.
//! #[global_allocator]
//! static ALLOCATOR: iac_cli::Allocator = iac_cli::Allocator;
//!
//! fn main() -> std::process::ExitCode {
//!     iac_cli::main(&Files)
//! }
//! ```

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod cli;
mod engine;
mod error;
mod interrupt;
mod print;
mod program;
mod state_verbs;
mod verbs;

use std::ffi::OsString;
use std::process::ExitCode;

pub use cli::{NoFlags, NoVerbs, Target};
pub use error::{Error, exit};
pub use program::StackProgram;

/// The memory allocator for a stack program (mimalloc): a program makes it its global
/// allocator with `#[global_allocator] static ALLOCATOR: iac_cli::Allocator =
/// iac_cli::Allocator;`. The engine allocates many small values (a state's properties, a
/// plan's records); on the system's allocator (glibc) a plan of 100,000 resources takes
/// about twice as long and half as much memory again (`docs/benchmarks.md`).
pub use mimalloc::MiMalloc as Allocator;

/// Runs the command line of `program` on this process's arguments and returns its exit code.
pub fn main<P: StackProgram>(program: &P) -> ExitCode {
    ExitCode::from(run(program, std::env::args_os()))
}

/// Runs the command line of `program` on `args` (the first is the command's own name) and
/// returns its exit code: what [`main`] does, for a caller that passes the arguments itself.
pub fn run<P: StackProgram>(program: &P, args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match cli::parse::<P>(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are answers; any other argument error is the user's to fix
            // (exit 1: clap's own 2 means "changes" for `--detailed-exitcode`).
            let code = if e.use_stderr() { exit::USER } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILED;
        }
    };
    match runtime.block_on(verbs::run(program, cli.verb)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}{}", e.hint(P::NAME));
            e.exit_code()
        }
    }
}
