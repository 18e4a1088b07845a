//! An environment: its file loaded, the programs it runs built, and its platform registered.

use std::path::{Path, PathBuf};

use clap::Args;
use iac_cli::Error;
use iac_core::Stack;
use kafka_components::{
    Credentials, KafkaPlatform, LocalPlatform, LocalService, PlatformConfig, Site,
};

use crate::error::StacksError;

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

/// An environment as loaded: its name, its configuration, the file it came from and where
/// its configuration is rendered.
pub(crate) struct Env {
    pub(crate) name: String,
    pub(crate) config: PlatformConfig,
    pub(crate) file: PathBuf,
    /// `<render dir>/<env>`, absolute, so the state means the same folder whatever the
    /// working directory of a later run.
    pub(crate) rendered: PathBuf,
    /// What the registered platform offers a person, once registered.
    pub(crate) registered: Option<Registered>,
}

/// Loads `<env dir>/<env>.toml`, its credentials folder resolved.
pub(crate) fn load(name: &str, flags: &Flags) -> Result<Env, Error> {
    let dir = flags.env_dir();
    let mut config = PlatformConfig::load(&dir, name).map_err(StacksError::from)?;
    let file = dir.join(format!("{name}.toml"));
    if let Some(home) = std::env::home_dir() {
        config.security.resolve_credentials_dir(name, &home);
    }
    let rendered = flags.render_dir.join(name);
    let rendered = std::path::absolute(&rendered)
        .map_err(Error::io(format!("cannot resolve {}", rendered.display())))?;
    Ok(Env {
        name: name.to_owned(),
        config,
        file,
        rendered,
        registered: None,
    })
}

/// What a registered platform offers a person.
pub(crate) struct Registered {
    /// The services of a local platform, with their URLs (none on AWS).
    pub(crate) services: Vec<LocalService>,
    /// The generated credentials of a SASL_SSL platform.
    pub(crate) credentials: Option<Credentials>,
}

/// The environment's platform registered on `stack` (the policies checked first); what it
/// offers a person is kept in the environment.
pub(crate) fn register(env: &mut Env, stack: &mut Stack) -> Result<(), StacksError> {
    let rendered = env.rendered.to_string_lossy().into_owned();
    let policy = |errors| StacksError::Policy {
        file: env.file.clone(),
        errors,
    };
    let registered = match &env.config.site {
        Site::Aws(_) => Registered {
            services: Vec::new(),
            credentials: KafkaPlatform::register(stack, &env.config, &rendered)
                .map_err(policy)?
                .credentials,
        },
        Site::Local(_) => {
            let platform = LocalPlatform::register(
                stack,
                &env.config,
                &rendered,
                &env.file.display().to_string(),
            )
            .map_err(policy)?;
            Registered {
                services: platform.services,
                credentials: platform.credentials,
            }
        }
    };
    env.registered = Some(registered);
    Ok(())
}

/// Builds what the environment runs from this workspace before it is planned — a local
/// environment's programs (`local.build`), the services an AWS deployment copies to the nodes
/// (`deploy.build`, unless the deployment is off or skipped): an up-to-date build takes a
/// moment, and a rebuilt program restarts its service.
pub(crate) fn build_programs(
    env: &Env,
    json: bool,
    flags: Option<&PlanFlags>,
) -> Result<(), Error> {
    let (build, what, field) = match &env.config.site {
        Site::Local(site) => (site.build.as_ref(), "the local programs", "local.build"),
        Site::Aws(site) => (
            site.deploy
                .build
                .as_ref()
                .filter(|_| site.deploy.enabled && !flags.is_some_and(|f| f.skip_deploy)),
            "the services for the nodes",
            "deploy.build",
        ),
    };
    let Some(build) = build else {
        return Ok(());
    };
    if !json {
        eprintln!("Building {what}: {build}");
    }
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", build])
        .stdin(std::process::Stdio::null());
    // What `cargo run` sets for the program it runs describes this CLI's own package; a
    // build reading it (ring's build script tracks CARGO_MANIFEST_DIR) would rebuild and
    // relink every program whenever the CLI is started the other way, restarting their
    // services for nothing.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name.as_ref(),
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        .status()
        .map_err(Error::io(format!("cannot run `{build}`")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StacksError::Build {
            command: build.clone(),
            field,
            file: env.file.clone(),
            status: status.to_string(),
        }
        .into())
    }
}
