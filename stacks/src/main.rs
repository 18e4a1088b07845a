//! `stacks`: the Kafka platform's environments (`stacks/envs/<env>.toml`) as a stack program.
//!
//! Every verb, flag and exit code is `iac-cli`'s (docs/cli.md); this crate adds what is the
//! platform's own: the environment file (`--env-dir`), the rendered configuration
//! (`--render-dir` and the `render` verb), the build before a plan, `--skip-deploy`, and what
//! an applied platform offers a person.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]
use std::process::ExitCode;

mod environment;
mod error;
mod platform;
mod render;

#[global_allocator]
static ALLOCATOR: iac_cli::Allocator = iac_cli::Allocator;

fn main() -> ExitCode {
    iac_cli::main(&platform::Platform)
}
