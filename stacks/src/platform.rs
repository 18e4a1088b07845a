//! The platform as a stack program: its flags, its `render` verb, and what `iac-cli` calls
//! before and after a verb.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use iac_cli::{Error, StackProgram, Target};
use iac_core::{Providers, Stack};
use kafka_components::deploy;

use crate::environment::{self, Env};
use crate::error::StacksError;
use crate::render;

/// The Kafka platform's environments.
pub(crate) struct Platform;

/// Where the environment files are and where the configuration is rendered.
#[derive(Args)]
pub(crate) struct Flags {
    /// Folder of environment files [default: `stacks/envs` in the working directory, else
    /// `envs`].
    #[arg(long, env = "STACKS_ENV_DIR")]
    env_dir: Option<PathBuf>,
    /// Folder of rendered configuration (one subfolder per environment).
    #[arg(long, env = "STACKS_RENDER_DIR", default_value = ".iac/rendered")]
    pub(crate) render_dir: PathBuf,
}

impl Flags {
    /// `--env-dir`, else `stacks/envs` when the working directory has it, else `envs`.
    pub(crate) fn env_dir(&self) -> PathBuf {
        match &self.env_dir {
            Some(dir) => dir.clone(),
            None if Path::new("stacks/envs").is_dir() => PathBuf::from("stacks/envs"),
            None => PathBuf::from("envs"),
        }
    }
}

/// What a run of the platform covers.
#[derive(Args)]
pub(crate) struct PlanFlags {
    /// Everything but the deployment onto the nodes (Ansible): its steps are left as recorded.
    #[arg(long, conflicts_with = "targets")]
    pub(crate) skip_deploy: bool,
}

/// The platform's own verb.
#[derive(Subcommand)]
pub(crate) enum Verbs {
    /// Write the configuration files rendered from the applied environment again (apply
    /// keeps them as the stack's `config` resource).
    Render {
        #[command(flatten)]
        target: Target<Platform>,
    },
}

impl StackProgram for Platform {
    const NAME: &'static str = "stacks";
    const ABOUT: &'static str = "Stand up and manage a Kafka platform environment";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STACK_ARG: &'static str = "ENV";
    const STACK_HELP: &'static str =
        "The environment: a file `<env>.toml` in the environments folder";

    type Flags = Flags;
    type PlanFlags = PlanFlags;
    type Verbs = Verbs;
    type Env = Env;

    fn load(&self, stack: &str, flags: &Flags) -> Result<Env, Error> {
        environment::load(stack, flags)
    }

    fn register(&self, env: &mut Env, stack: &mut Stack) -> Result<(), Error> {
        Ok(environment::register(env, stack)?)
    }

    async fn providers(&self, env: &Env) -> Result<Providers, Error> {
        Ok(kafka_components::providers(&env.config)
            .await
            .map_err(StacksError::Connect)?)
    }

    fn left_as_recorded(&self, env: &Env, flags: &PlanFlags) -> Vec<String> {
        if flags.skip_deploy {
            deploy::command_names(&env.config)
        } else {
            Vec::new()
        }
    }

    fn before_plan(&self, env: &Env, flags: Option<&PlanFlags>, json: bool) -> Result<(), Error> {
        environment::build_programs(env, json, flags)
    }

    /// On AWS with `[deploy]` off: what `apply` would run after the files, were it on.
    fn after_preview(&self, env: &Env) {
        if let Some(site) = env.config.aws()
            && !site.deploy.enabled
        {
            let steps: Vec<&str> = deploy::steps(&env.config).map(|s| s.name).collect();
            println!(
                "Deploy: off (`enabled = false` under [deploy] in {}); on, apply would run after the files: {}",
                env.file.display(),
                steps.join(", ")
            );
        }
    }

    /// Where the configuration is, and what a local platform offers.
    fn after_apply(&self, env: &Env) -> Result<(), Error> {
        println!("\nConfiguration rendered to {}", env.rendered.display());
        let Some(registered) = &env.registered else {
            return Ok(());
        };
        if !registered.services.is_empty() {
            println!("\nRunning on this machine:");
            for service in &registered.services {
                println!("  {:<22} {}", service.name, service.url);
            }
        }
        if let Some(credentials) = &registered.credentials {
            println!(
                "\nKeys and passwords (mode 0600; never commit them) in {}:",
                credentials.dir
            );
            for file in &credentials.files {
                println!("  {file}");
            }
        }
        Ok(())
    }

    /// Nothing is left to describe: no file may outlive the stack it was made from.
    fn after_destroy(&self, env: &Env) -> Result<(), Error> {
        match std::fs::remove_dir_all(&env.rendered) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!(
                "cannot remove {}",
                env.rendered.display()
            ))(e)),
            _ => Ok(()),
        }
    }

    async fn run_verb(&self, verb: Verbs) -> Result<u8, Error> {
        match verb {
            Verbs::Render { target } => render::run(&target).await,
        }
    }
}
