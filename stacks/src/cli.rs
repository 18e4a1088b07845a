//! The command line: the verbs and their flags, as clap parses them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use iac_core::{DEFAULT_PARALLELISM, Targets};
use kafka_components::{PlatformConfig, deploy};

#[derive(Parser)]
#[command(
    name = "stacks",
    version,
    about = "Stand up and manage a Kafka platform environment"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) verb: Verb,
}

#[derive(Subcommand)]
pub(crate) enum Verb {
    /// Show what apply would change.
    Preview {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        planning: Planning,
        /// Save the plan, to apply exactly it later with `apply --plan`.
        #[arg(long, value_name = "FILE")]
        plan_out: Option<PathBuf>,
        /// Exit with 2 when there are changes.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the environment match its configuration.
    Apply {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        planning: Planning,
        /// Apply exactly this saved plan (refused if anything changed since; it carries the
        /// replacements it was made with).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["replace", "refresh", "targets"])]
        plan: Option<PathBuf>,
    },
    /// Delete every resource of the environment (with --target: those and what depends on
    /// them).
    Destroy {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
        /// Only this resource and what depends on it (repeatable).
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
    },
    /// Read every resource from AWS, record drift, resolve interrupted operations.
    Refresh {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        targeting: Targeting,
    },
    /// Print the environment's outputs (secrets as `[secret]`).
    Outputs {
        #[command(flatten)]
        target: Target,
        /// Print the secret outputs' values too.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Write the configuration files rendered from the applied environment again (apply
    /// keeps them as the stack's `config` resource).
    Render {
        #[command(flatten)]
        target: Target,
    },
    /// Adopt an object that exists already as the program's resource NAME (tagged as this
    /// stack's); the next preview shows what the program would change of it.
    Import {
        #[command(flatten)]
        target: Target,
        /// The resource's type token, as the program registers it (`aws:ec2:Vpc`).
        #[arg(value_name = "TYPE")]
        type_token: String,
        /// The resource's name in the program.
        name: String,
        /// The object's id (`vpc-0abc…`; a role's or profile's name).
        id: String,
    },
    /// Read or change a stack's recorded state, or move it between backends.
    State {
        #[command(subcommand)]
        action: StateVerb,
    },
}

#[derive(Subcommand)]
pub(crate) enum StateVerb {
    /// List the recorded resources: name, type, id.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Show one recorded resource: its id, dependencies, inputs and outputs (secrets as
    /// `[secret]`).
    Show {
        #[command(flatten)]
        target: Target,
        /// The resource's name in the stack.
        name: String,
    },
    /// Forget a resource without deleting it (refused for a protected one, or one others
    /// depend on, unless --force).
    Delete {
        #[command(flatten)]
        target: Target,
        /// The resource's name in the stack.
        name: String,
        /// Forget it even so.
        #[arg(long)]
        force: bool,
    },
    /// Rename a resource in the state, after renaming it in the program: moved, not
    /// replaced.
    Rename {
        #[command(flatten)]
        target: Target,
        /// Its recorded name.
        old: String,
        /// Its name in the program now.
        new: String,
    },
    /// Print the stack's state as one JSON document (secrets stay encrypted).
    Export {
        #[command(flatten)]
        target: Target,
    },
    /// Store a document `state export` printed as the stack's state, under its lock;
    /// refused when the stack has state already.
    Import {
        #[command(flatten)]
        target: Target,
        /// The exported state (`-`: standard input).
        file: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct Target {
    /// The environment: a file `<env>.toml` in the environments folder.
    pub(crate) env: String,
    /// Folder of environment files [default: `stacks/envs` in the working directory, else
    /// `envs`].
    #[arg(long, env = "STACKS_ENV_DIR")]
    pub(crate) env_dir: Option<PathBuf>,
    /// Folder of state files (one stack per environment).
    #[arg(long, env = "IAC_STATE_DIR", default_value = ".iac/state")]
    pub(crate) state_dir: PathBuf,
    /// Keep state in a bucket instead, `s3://<bucket>/<prefix>` (snapshot, journal and
    /// lock as objects; the AWS settings of the environment variables apply).
    #[arg(long, env = "IAC_BACKEND", value_name = "URL")]
    pub(crate) backend: Option<String>,
    /// Folder of rendered configuration (one subfolder per environment).
    #[arg(long, env = "STACKS_RENDER_DIR", default_value = ".iac/rendered")]
    pub(crate) render_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Break the stack's lock, then continue: for a lock left on another host by a run
    /// that is gone (one left on this host is taken over by itself). Refused while the
    /// holder runs on this host.
    #[arg(long)]
    pub(crate) force_unlock: bool,
    /// Wait this long for a run that holds the stack's lock (`30s`, `5m`) instead of
    /// failing at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) lock_timeout: Option<Duration>,
    /// Provider operations running at once (at least 1).
    #[arg(long, default_value_t = DEFAULT_PARALLELISM, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) parallel: usize,
}

/// How `preview` and `apply` plan.
#[derive(Args)]
pub(crate) struct Planning {
    /// Replace this resource even if nothing of it changed, through the normal replacement
    /// order (repeatable).
    #[arg(long, value_name = "NAME")]
    pub(crate) replace: Vec<String>,
    /// Read every resource first (recording drift), then plan against what is there.
    #[arg(long)]
    pub(crate) refresh: bool,
    #[command(flatten)]
    pub(crate) targeting: Targeting,
}

/// Which resources a run covers.
#[derive(Args)]
pub(crate) struct Targeting {
    /// Only this resource and what it needs; the rest is left as recorded (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// With --target: also what depends on the targets.
    #[arg(long, requires = "targets")]
    pub(crate) target_dependents: bool,
    /// Everything but the deployment onto the nodes (Ansible): its steps are left as recorded.
    #[arg(long, conflicts_with = "targets")]
    pub(crate) skip_deploy: bool,
}

impl Targeting {
    /// The targets of a run of the platform of `config`.
    pub(crate) fn targets(&self, config: &PlatformConfig) -> Targets {
        if self.skip_deploy {
            return Targets::all_but(deploy::command_names(config));
        }
        Targets {
            names: self.targets.iter().cloned().collect(),
            dependents: self.target_dependents,
            ..Targets::default()
        }
    }
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    pub(crate) yes: bool,
}

impl Target {
    /// `--env-dir`, else `stacks/envs` when the working directory has it, else `envs`.
    pub(crate) fn env_dir(&self) -> PathBuf {
        match &self.env_dir {
            Some(dir) => dir.clone(),
            None if Path::new("stacks/envs").is_dir() => PathBuf::from("stacks/envs"),
            None => PathBuf::from("envs"),
        }
    }
}
