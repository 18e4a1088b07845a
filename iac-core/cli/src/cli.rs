//! The command line: the verbs and their flags, as clap parses them, with the program's own
//! flags and verbs among them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use iac_core::{DEFAULT_PARALLELISM, Targets};

use crate::program::StackProgram;

#[derive(Parser)]
pub(crate) struct Cli<P: StackProgram> {
    #[command(subcommand)]
    pub(crate) verb: Verb<P>,
}

/// No flags of the program's own (as [`StackProgram::Flags`] and as
/// [`StackProgram::PlanFlags`]: it forms no argument group, so it may be both; a type of the
/// program's own with flags forms one named after it, so the two must be different types).
#[derive(Args, Debug, Clone, Copy, Default)]
#[group(skip)]
pub struct NoFlags {}

/// No verbs of the program's own.
#[derive(Subcommand, Debug, Clone, Copy)]
pub enum NoVerbs {}

/// The command line of `P` parsed from `args`: named, described and versioned as `P` says.
pub(crate) fn parse<P: StackProgram>(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Cli<P>, clap::Error> {
    let command = Cli::<P>::command()
        .name(P::NAME)
        .bin_name(P::NAME)
        .about(P::ABOUT)
        .version(P::VERSION);
    let mut matches = command.try_get_matches_from(args)?;
    Cli::<P>::from_arg_matches_mut(&mut matches)
}

#[derive(Subcommand)]
pub(crate) enum Verb<P: StackProgram> {
    /// Show what apply would change.
    Preview {
        #[command(flatten)]
        target: Target<P>,
        #[command(flatten)]
        planning: Planning<P::PlanFlags>,
        /// Save the plan, to apply exactly it later with `apply --plan`.
        #[arg(long, value_name = "FILE")]
        plan_out: Option<PathBuf>,
        /// Exit with 2 when there are changes.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Make the stack match its program.
    Apply {
        #[command(flatten)]
        target: Target<P>,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        planning: Planning<P::PlanFlags>,
        /// Apply exactly this saved plan (refused if anything changed since; it carries the
        /// replacements it was made with).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["replace", "refresh", "targets"])]
        plan: Option<PathBuf>,
    },
    /// Delete every resource of the stack (with --target: those and what depends on them).
    Destroy {
        #[command(flatten)]
        target: Target<P>,
        #[command(flatten)]
        run: RunArgs,
        /// Only this resource and what depends on it (repeatable).
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
    },
    /// Read every resource, record drift, resolve interrupted operations.
    Refresh {
        #[command(flatten)]
        target: Target<P>,
        #[command(flatten)]
        targeting: Targeting<P::PlanFlags>,
    },
    /// Print the stack's outputs (secrets as `[secret]`).
    Outputs {
        #[command(flatten)]
        target: Target<P>,
        /// Print the secret outputs' values too.
        #[arg(long)]
        show_secrets: bool,
    },
    #[command(flatten)]
    Own(P::Verbs),
    /// Adopt an object that exists already as the program's resource NAME (tagged as this
    /// stack's); the next preview shows what the program would change of it.
    Import {
        #[command(flatten)]
        target: Target<P>,
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
        action: StateVerb<P>,
    },
}

#[derive(Subcommand)]
pub(crate) enum StateVerb<P: StackProgram> {
    /// List the recorded resources: name, type, id.
    List {
        #[command(flatten)]
        target: Target<P>,
    },
    /// Show one recorded resource: its id, dependencies, inputs and outputs (secrets as
    /// `[secret]`).
    Show {
        #[command(flatten)]
        target: Target<P>,
        /// The resource's name in the stack.
        name: String,
    },
    /// Forget a resource without deleting it (refused for a protected one, or one others
    /// depend on, unless --force).
    Delete {
        #[command(flatten)]
        target: Target<P>,
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
        target: Target<P>,
        /// Its recorded name.
        old: String,
        /// Its name in the program now.
        new: String,
    },
    /// Print the stack's state as one JSON document (secrets stay encrypted).
    Export {
        #[command(flatten)]
        target: Target<P>,
    },
    /// Store a document `state export` printed as the stack's state, under its lock;
    /// refused when the stack has state already.
    Import {
        #[command(flatten)]
        target: Target<P>,
        /// The exported state (`-`: standard input).
        file: PathBuf,
    },
}

/// What every verb that names a stack takes: the stack, where its state is, how to print,
/// the lock, and the program's own flags. Public for a program's own verbs.
#[derive(Args)]
pub struct Target<P: StackProgram> {
    /// The stack's name, named and described in `--help` as the program says.
    #[arg(value_name = P::STACK_ARG, help = P::STACK_HELP)]
    pub stack: String,
    /// The program's own flags.
    #[command(flatten)]
    pub program: P::Flags,
    /// Folder of state files (one per stack).
    #[arg(long, env = "IAC_STATE_DIR", default_value = ".iac/state")]
    pub state_dir: PathBuf,
    /// Keep state in a bucket instead, `s3://<bucket>/<prefix>` (snapshot, journal and
    /// lock as objects; the AWS settings of the environment variables apply).
    #[arg(long, env = "IAC_BACKEND", value_name = "URL")]
    pub backend: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Break the stack's lock, then continue: for a lock left on another host by a run
    /// that is gone (one left on this host is taken over by itself). Refused while the
    /// holder runs on this host.
    #[arg(long)]
    pub force_unlock: bool,
    /// Wait this long for a run that holds the stack's lock (`30s`, `5m`) instead of
    /// failing at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// Provider operations running at once (at least 1).
    #[arg(long, default_value_t = DEFAULT_PARALLELISM, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub parallel: usize,
}

/// How `preview` and `apply` plan.
#[derive(Args)]
pub(crate) struct Planning<F: Args> {
    /// Replace this resource even if nothing of it changed, through the normal replacement
    /// order (repeatable).
    #[arg(long, value_name = "NAME")]
    pub(crate) replace: Vec<String>,
    /// Read every resource first (recording drift), then plan against what is there.
    #[arg(long)]
    pub(crate) refresh: bool,
    #[command(flatten)]
    pub(crate) targeting: Targeting<F>,
}

/// Which resources a run covers.
#[derive(Args)]
pub(crate) struct Targeting<F: Args> {
    /// Only this resource and what it needs; the rest is left as recorded (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub(crate) targets: Vec<String>,
    /// With --target: also what depends on the targets.
    #[arg(long, requires = "targets")]
    pub(crate) target_dependents: bool,
    /// The program's own flags of a run.
    #[command(flatten)]
    pub(crate) program: F,
}

impl<F: Args> Targeting<F> {
    /// The targets of a run: those named, else every resource but what the program leaves
    /// as recorded.
    pub(crate) fn targets<P: StackProgram<PlanFlags = F>>(
        &self,
        program: &P,
        env: &P::Env,
    ) -> Targets {
        if self.targets.is_empty() {
            return Targets::all_but(program.left_as_recorded(env, &self.program));
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
