//! The platform as a stack program: its flags, its `render` verb, and what `iac-cli` calls
//! before and after a verb.

use clap::Subcommand;
use iac_cli::{Error, StackProgram, Target};
use iac_core::{Providers, Stack};
use kafka_components::deploy;

use crate::environment::{self, Env, Flags, PlanFlags};
use crate::error::StacksError;
use crate::render;

/// The Kafka platform's environments.
pub(crate) struct Platform;

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
            Verbs::Render { target } => {
                let env = environment::load(&target.stack, &target.program)?;
                let engine = target.state_engine()?;
                render::run(&env, &engine, target.json).await
            }
        }
    }
}
