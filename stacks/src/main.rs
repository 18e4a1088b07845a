//! `stacks`: preview, apply, destroy, refresh and show the outputs of a Kafka platform
//! environment (`stacks/envs/<env>.toml`).
//!
//! Glue only: parse arguments, load the environment, call `kafka-components` and `iac-core`,
//! print. Exit codes ([`error`]): 0 success; 1 the user must change something (arguments,
//! environment file, policy, plan, lock, passphrase); 2 `preview --detailed-exitcode` found
//! changes; 3 a provider or state failure (some steps failed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod error;
mod interrupt;

use crate::interrupt::Interrupts;
use clap::{Args, Parser, Subcommand};
use error::{EXIT_CHANGES, EXIT_FAILED, EXIT_OK, EXIT_USER, StacksError};
use iac_aws::AwsProvider;
use iac_core::state::{Checkpoint, StateBackend};
use iac_core::{
    ApplyOptions, ApplySummary, DEFAULT_PARALLELISM, Engine, FileBackend, Passphrase, Plan,
    PlanOptions, PlanRecord, Program, Progress, Providers, Shown, Stack, Targets,
};
use iac_local::LocalProvider;
use iac_state_s3::S3Backend;
use iac_tls::TlsProvider;
use kafka_components::{
    Credentials, KafkaPlatform, LocalPlatform, LocalService, NodeFacts, PlatformConfig, Site,
    deploy,
};

#[derive(Parser)]
#[command(
    name = "stacks",
    version,
    about = "Stand up and manage a Kafka platform environment"
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
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
enum StateVerb {
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
struct Target {
    /// The environment: a file `<env>.toml` in the environments folder.
    env: String,
    /// Folder of environment files [default: `stacks/envs` in the working directory, else
    /// `envs`].
    #[arg(long, env = "STACKS_ENV_DIR")]
    env_dir: Option<PathBuf>,
    /// Folder of state files (one stack per environment).
    #[arg(long, env = "IAC_STATE_DIR", default_value = ".iac/state")]
    state_dir: PathBuf,
    /// Keep state in a bucket instead, `s3://<bucket>/<prefix>` (snapshot, journal and
    /// lock as objects; the AWS settings of the environment variables apply).
    #[arg(long, env = "IAC_BACKEND", value_name = "URL")]
    backend: Option<String>,
    /// Folder of rendered configuration (one subfolder per environment).
    #[arg(long, env = "STACKS_RENDER_DIR", default_value = ".iac/rendered")]
    render_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Break the stack's lock, then continue: for a lock left on another host by a run
    /// that is gone (one left on this host is taken over by itself). Refused while the
    /// holder runs on this host.
    #[arg(long)]
    force_unlock: bool,
    /// Wait this long for a run that holds the stack's lock (`30s`, `5m`) instead of
    /// failing at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    lock_timeout: Option<Duration>,
    /// Provider operations running at once (at least 1).
    #[arg(long, default_value_t = DEFAULT_PARALLELISM, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    parallel: usize,
}

/// How `preview` and `apply` plan.
#[derive(Args)]
struct Planning {
    /// Replace this resource even if nothing of it changed, through the normal replacement
    /// order (repeatable).
    #[arg(long, value_name = "NAME")]
    replace: Vec<String>,
    /// Read every resource first (recording drift), then plan against what is there.
    #[arg(long)]
    refresh: bool,
    #[command(flatten)]
    targeting: Targeting,
}

/// Which resources a run covers.
#[derive(Args)]
struct Targeting {
    /// Only this resource and what it needs; the rest is left as recorded (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// With --target: also what depends on the targets.
    #[arg(long, requires = "targets")]
    target_dependents: bool,
    /// Everything but the deployment onto the nodes (Ansible): its steps are left as recorded.
    #[arg(long, conflicts_with = "targets")]
    skip_deploy: bool,
}

impl Targeting {
    fn targets(&self) -> Targets {
        if self.skip_deploy {
            return Targets::all_but(deploy::STEPS.iter().map(|step| step.name));
        }
        Targets {
            names: self.targets.iter().cloned().collect(),
            dependents: self.target_dependents,
            ..Targets::default()
        }
    }
}

#[derive(Args)]
struct RunArgs {
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

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

struct Env {
    name: String,
    config: PlatformConfig,
    file: PathBuf,
}

impl Target {
    /// `--env-dir`, else `stacks/envs` when the working directory has it, else `envs`.
    fn env_dir(&self) -> PathBuf {
        match &self.env_dir {
            Some(dir) => dir.clone(),
            None if Path::new("stacks/envs").is_dir() => PathBuf::from("stacks/envs"),
            None => PathBuf::from("envs"),
        }
    }
}

fn load(target: &Target) -> Result<Env, StacksError> {
    let dir = target.env_dir();
    let mut config = PlatformConfig::load(&dir, &target.env)?;
    let file = dir.join(format!("{}.toml", target.env));
    if let Some(home) = std::env::home_dir() {
        config.security.resolve_credentials_dir(&target.env, &home);
    }
    Ok(Env {
        name: target.env.clone(),
        config,
        file,
    })
}

/// Where the rendered configuration of the environment goes: absolute, so the state means
/// the same folder whatever the working directory of a later run.
fn rendered_dir(env: &Env, target: &Target) -> Result<String, StacksError> {
    let dir = target.render_dir.join(&env.name);
    std::path::absolute(&dir)
        .map(|d| d.to_string_lossy().into_owned())
        .map_err(StacksError::io(format!("cannot resolve {}", dir.display())))
}

/// What a registered platform offers a person.
struct Registered {
    /// The services of a local platform, with their URLs (none on AWS).
    services: Vec<LocalService>,
    /// The generated credentials of a SASL_SSL platform.
    credentials: Option<Credentials>,
}

fn program(env: &Env, target: &Target) -> Result<(Program, Registered), StacksError> {
    let mut stack = Stack::new(env.name.clone());
    let rendered = rendered_dir(env, target)?;
    let policy = |errors| StacksError::Policy {
        file: env.file.clone(),
        errors,
    };
    let registered = match &env.config.site {
        Site::Aws(_) => Registered {
            services: Vec::new(),
            credentials: KafkaPlatform::register(&mut stack, &env.config, &rendered)
                .map_err(policy)?
                .credentials,
        },
        Site::Local(_) => {
            let platform = LocalPlatform::register(
                &mut stack,
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
    Ok((stack.build()?, registered))
}

/// Builds what the environment runs from this workspace before it is planned — a local
/// environment's programs (`local.build`), the services an AWS deployment copies to the nodes
/// (`deploy.build`, unless the deployment is off or skipped): an up-to-date build takes a
/// moment, and a rebuilt program restarts its service.
fn build_programs(env: &Env, json: bool, targeting: Option<&Targeting>) -> Result<(), StacksError> {
    let (build, what, field) = match &env.config.site {
        Site::Local(site) => (site.build.as_ref(), "the local programs", "local.build"),
        Site::Aws(site) => (
            site.deploy
                .build
                .as_ref()
                .filter(|_| site.deploy.enabled && !targeting.is_some_and(|t| t.skip_deploy)),
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
        .map_err(StacksError::io(format!("cannot run `{build}`")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StacksError::Build {
            command: build.clone(),
            field,
            file: env.file.clone(),
            status: status.to_string(),
        })
    }
}

async fn engine(env: &Env, target: &Target) -> Result<Engine, StacksError> {
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
fn engine_with(providers: Providers, target: &Target) -> Result<Engine, StacksError> {
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
fn backend(target: &Target) -> Result<Box<dyn StateBackend>, StacksError> {
    Ok(match &target.backend {
        Some(url) => Box::new(S3Backend::connect(url)?),
        None => Box::new(FileBackend::new(&target.state_dir)),
    })
}

/// Shown values as JSON: plain values as they are, the rest (`[secret]`, `(known after
/// apply)`) as their text.
fn shown_json(values: &std::collections::BTreeMap<String, Shown>) -> serde_json::Value {
    values
        .iter()
        .map(|(key, shown)| {
            let value = match shown {
                Shown::Value(value) => value.clone(),
                other => serde_json::Value::String(other.to_string()),
            };
            (key.clone(), value)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// An engine for the state verbs: they call no provider.
fn state_engine(target: &Target) -> Result<Engine, StacksError> {
    engine_with(Providers::new(), target)
}

/// A record as `state list --json` and `state show` print it (`show` adds its dependencies,
/// inputs and outputs, secrets as `[secret]`).
fn record_json(r: &iac_core::state::ResourceState, detailed: bool) -> serde_json::Value {
    let mut record = serde_json::json!({
        "name": r.name,
        "type": r.type_token,
        "id": r.id,
        "protect": r.protect,
        "delete_pending": r.delete_pending,
    });
    if detailed {
        record["dependencies"] = serde_json::json!(r.dependencies);
        record["inputs"] = shown_json(&Shown::map(&r.inputs, &r.secrets));
        record["outputs"] = shown_json(&Shown::map(&r.outputs, &r.secrets));
    }
    record
}

/// The stack's state, decrypted; a stack without state is the user's to check.
async fn recorded(engine: &Engine, stack: &str) -> Result<Checkpoint, StacksError> {
    engine
        .state(stack)
        .await?
        .ok_or_else(|| StacksError::NoState {
            stack: stack.to_owned(),
        })
}

/// `state list`: a line per record (name, type, id, flags), or JSON.
async fn state_list(target: &Target) -> Result<u8, StacksError> {
    let checkpoint = recorded(&state_engine(target)?, &target.env).await?;
    let records: Vec<_> = checkpoint.resources.iter().collect();
    if target.json {
        let listed: Vec<serde_json::Value> =
            records.iter().map(|r| record_json(r, false)).collect();
        println!("{}", to_json(&listed));
        return Ok(EXIT_OK);
    }
    let names = records.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let types = records
        .iter()
        .map(|r| r.type_token.len())
        .max()
        .unwrap_or(0);
    for r in records {
        let mut flags = String::new();
        if r.protect {
            flags.push_str("  protected");
        }
        if r.delete_pending {
            flags.push_str("  replaced: deleted by the next apply");
        }
        println!(
            "{:<names$}  {:<types$}  {}{flags}",
            r.name, r.type_token, r.id
        );
    }
    Ok(EXIT_OK)
}

/// `state show NAME`: the resource's records as JSON, secrets as `[secret]`.
async fn state_show(target: &Target, name: &str) -> Result<u8, StacksError> {
    let checkpoint = recorded(&state_engine(target)?, &target.env).await?;
    let found: Vec<serde_json::Value> = checkpoint
        .resources
        .iter()
        .filter(|r| r.name == name)
        .map(|r| record_json(r, true))
        .collect();
    if found.is_empty() {
        return Err(StacksError::Engine(iac_core::EngineError::NoSuchResource {
            stack: target.env.clone(),
            name: name.to_owned(),
        }));
    }
    for record in found {
        println!("{}", to_json(&record));
    }
    Ok(EXIT_OK)
}

/// `state delete NAME`: forgets it; says what was forgotten.
async fn state_delete(target: &Target, name: &str, force: bool) -> Result<u8, StacksError> {
    for r in state_engine(target)?
        .forget(&target.env, name, force)
        .await?
    {
        eprintln!(
            "forgot `{}` ({} {}): it still exists; while the program has it, the next apply creates another",
            r.name, r.type_token, r.id
        );
    }
    Ok(EXIT_OK)
}

/// `state rename OLD NEW`.
async fn state_rename(target: &Target, old: &str, new: &str) -> Result<u8, StacksError> {
    state_engine(target)?.rename(&target.env, old, new).await?;
    eprintln!("renamed `{old}` to `{new}` in stack `{}`", target.env);
    Ok(EXIT_OK)
}

/// `state export`: the stored state, as one JSON document.
fn state_export(target: &Target) -> Result<u8, StacksError> {
    let Some(checkpoint) = backend(target)?.load(&target.env)? else {
        return Err(StacksError::NoState {
            stack: target.env.clone(),
        });
    };
    println!("{}", to_json(&checkpoint));
    Ok(EXIT_OK)
}

/// `state import FILE`: stores an exported state where the stack has none, under its lock.
fn state_import(target: &Target, file: &Path) -> Result<u8, StacksError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(StacksError::io(format!("cannot read {}", file.display())))?;
    let checkpoint = Checkpoint::from_snapshot(&target.env, &text, file)?;
    let backend = backend(target)?;
    let _lock = backend.lock(&target.env, "state import")?;
    if backend.load(&target.env)?.is_some() {
        return Err(StacksError::StateExists {
            stack: target.env.clone(),
        });
    }
    backend.save(&checkpoint)?;
    eprintln!(
        "imported stack `{}` ({} resources, serial {})",
        target.env,
        checkpoint.resources.len(),
        checkpoint.serial
    );
    Ok(EXIT_OK)
}

async fn run(cli: Cli) -> Result<u8, StacksError> {
    match cli.verb {
        Verb::Preview {
            target,
            planning,
            plan_out,
            detailed_exitcode,
        } => {
            let env = load(&target)?;
            build_programs(&env, target.json, Some(&planning.targeting))?;
            let (program, _) = program(&env, &target)?;
            let engine = engine(&env, &target).await?;
            let plan = plan_fresh(&engine, &program, &target, &planning).await?;
            print_plan(&plan, target.json);
            if !target.json {
                show_deploy_off(&env);
            }
            if let Some(path) = plan_out {
                std::fs::write(&path, plan.record().to_json()).map_err(|e| {
                    StacksError::PlanFile {
                        path: path.clone(),
                        reason: format!("cannot write the plan: {e}"),
                    }
                })?;
                eprintln!("plan saved to {}", path.display());
            }
            Ok(if detailed_exitcode && plan.has_changes() {
                EXIT_CHANGES
            } else {
                EXIT_OK
            })
        }
        Verb::Apply {
            target,
            run,
            planning,
            plan,
        } => {
            let env = load(&target)?;
            build_programs(
                &env,
                target.json,
                plan.is_none().then_some(&planning.targeting),
            )?;
            let (program, registered) = program(&env, &target)?;
            let engine = engine(&env, &target).await?;
            let summary = match plan {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|e| StacksError::PlanFile {
                            path: path.clone(),
                            reason: format!("cannot read the plan: {e}"),
                        })?;
                    let saved =
                        PlanRecord::from_json(&text).map_err(|e| StacksError::PlanFile {
                            path: path.clone(),
                            reason: e.to_string(),
                        })?;
                    execute(&engine, &program, Planned::Saved(&saved), &target, &run).await?
                }
                None => {
                    resolve_interrupted(&engine, &env.name, &target).await?;
                    let fresh = plan_fresh(&engine, &program, &target, &planning).await?;
                    execute(&engine, &program, Planned::Fresh(&fresh), &target, &run).await?
                }
            };
            let code = finish(summary.as_ref(), &engine, &env.name, target.json).await?;
            if summary.as_ref().is_some_and(Applied::is_success) && !target.json {
                show_what_runs(&registered, &env, &target)?;
            }
            Ok(code)
        }
        Verb::Destroy {
            target,
            run,
            targets,
        } => {
            let env = load(&target)?;
            let engine = engine(&env, &target).await?;
            let program = Program::empty(&env.name)?;
            resolve_interrupted(&engine, &env.name, &target).await?;
            // What depends on a deleted resource goes first, so a targeted destroy covers it.
            let options = PlanOptions {
                targets: Targets::only(targets.iter().cloned()).with_dependents(),
                ..PlanOptions::default()
            };
            let plan = engine.preview_with(&program, &options).await?;
            let summary = execute(&engine, &program, Planned::Fresh(&plan), &target, &run).await?;
            let code = finish(summary.as_ref(), &engine, &env.name, target.json).await?;
            if targets.is_empty() && summary.as_ref().is_some_and(Applied::is_success) {
                // Nothing is left to describe: no file may outlive the stack it was made from.
                let out = target.render_dir.join(&env.name);
                match std::fs::remove_dir_all(&out) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StacksError::io(format!("cannot remove {}", out.display()))(
                            e,
                        ));
                    }
                    _ => {}
                }
            }
            Ok(code)
        }
        Verb::Refresh { target, targeting } => {
            let env = load(&target)?;
            let engine = engine(&env, &target).await?;
            let report = engine
                .refresh_targets(&env.name, &targeting.targets(), target.parallel)
                .await?;
            if target.json {
                println!("{}", to_json(&report));
            } else {
                println!("{report}");
            }
            Ok(if report.errors.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILED
            })
        }
        Verb::Import {
            target,
            type_token,
            name,
            id,
        } => {
            let env = load(&target)?;
            let (program, _) = program(&env, &target)?;
            let engine = engine(&env, &target).await?;
            let record = engine.import(&program, &type_token, &name, &id).await?;
            eprintln!(
                "imported {} `{}` as `{name}` into stack `{}`: run preview to see what the program would change",
                record.type_token, record.id, env.name
            );
            Ok(EXIT_OK)
        }
        Verb::Render { target } => {
            let env = load(&target)?;
            let engine = engine(&env, &target).await?;
            render(&engine, &env, &target).await?;
            Ok(EXIT_OK)
        }
        Verb::State { action } => match &action {
            StateVerb::List { target } => state_list(target).await,
            StateVerb::Show { target, name } => state_show(target, name).await,
            StateVerb::Delete {
                target,
                name,
                force,
            } => state_delete(target, name, *force).await,
            StateVerb::Rename { target, old, new } => state_rename(target, old, new).await,
            StateVerb::Export { target } => state_export(target),
            StateVerb::Import { target, file } => state_import(target, file),
        },
        Verb::Outputs {
            target,
            show_secrets,
        } => {
            let env = load(&target)?;
            let engine = state_engine(&target)?;
            let outputs = if show_secrets {
                engine
                    .state(&env.name)
                    .await?
                    .map(|state| {
                        state
                            .outputs
                            .into_iter()
                            .map(|(key, value)| (key, Shown::Value(value)))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                engine.outputs(&env.name).await?
            };
            print_outputs(&outputs, target.json);
            Ok(EXIT_OK)
        }
    }
}

/// On AWS with `[deploy]` off: what `apply` would run after the files, were it on.
fn show_deploy_off(env: &Env) {
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

/// Plans the program, after a refresh with `--refresh`, replacing what `--replace` names.
async fn plan_fresh(
    engine: &Engine,
    program: &Program,
    target: &Target,
    planning: &Planning,
) -> Result<Plan, StacksError> {
    let targets = planning.targeting.targets();
    if planning.refresh {
        let report = engine
            .refresh_targets(program.stack(), &targets, target.parallel)
            .await?;
        if !target.json {
            println!("{report}\n");
        }
    }
    let options = PlanOptions {
        replace: planning.replace.iter().cloned().collect(),
        targets,
    };
    Ok(engine.preview_with(program, &options).await?)
}

/// Before planning: looks up what an interrupted run (or a create whose answer was lost) may
/// have made, and records it, so nothing is created twice and nothing waits for the user.
async fn resolve_interrupted(
    engine: &Engine,
    stack: &str,
    target: &Target,
) -> Result<(), StacksError> {
    let report = engine.resolve_interrupted(stack, target.parallel).await?;
    if !report.drift.is_empty() && !target.json {
        println!("Resolved operations an earlier run left unfinished:");
        for d in &report.drift {
            println!("{d}");
        }
        println!();
    }
    match report.errors.first() {
        None => Ok(()),
        Some(failure) => Err(StacksError::Unresolved {
            name: failure.name.clone(),
            error: failure.error.clone(),
        }),
    }
}

enum Planned<'a> {
    Fresh(&'a Plan),
    Saved(&'a PlanRecord),
}

fn print_plan(plan: &Plan, json: bool) {
    if json {
        println!("{}", plan.record().to_json());
    } else {
        print!("{}", plan.render());
    }
}

/// Pretty JSON of a value that is always representable (maps with string keys).
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Asks before changing anything, unless `--yes`; refuses to guess without a terminal.
fn confirm(stack: &str) -> Result<bool, StacksError> {
    iac_core::confirm(&format!("Apply these changes to stack {stack}?"))
        .map_err(StacksError::io("cannot ask on the terminal"))?
        .ok_or(StacksError::NeedsConfirmation)
}

async fn execute(
    engine: &Engine,
    program: &Program,
    planned: Planned<'_>,
    target: &Target,
    run: &RunArgs,
) -> Result<Option<Applied>, StacksError> {
    let has_changes = match planned {
        Planned::Fresh(plan) => {
            print_plan(plan, target.json);
            plan.has_changes()
        }
        Planned::Saved(record) => {
            print!("{}", iac_core::render_preview(record));
            record.has_changes()
        }
    };
    if has_changes && !run.yes && !confirm(program.stack())? {
        eprintln!("nothing changed");
        return Ok(None);
    }
    // With --json the output is one document: no progress lines.
    let progress = (!target.json).then(Progress::stdout);
    let options = ApplyOptions {
        parallelism: target.parallel,
        events: progress.as_ref().map(Progress::events),
        ..ApplyOptions::default()
    };
    let interrupts = Interrupts::watch(options.stop.clone())?;
    let result = match planned {
        Planned::Fresh(plan) => engine.apply(program, plan, &options).await,
        Planned::Saved(record) => engine.apply_saved(program, record, &options).await,
    };
    if let Some(progress) = progress {
        progress.finish().await;
    }
    Ok(Some(Applied {
        summary: result?,
        interrupted: interrupts.exit_code(),
    }))
}

/// What an apply did, and the signal that stopped it, if one did.
struct Applied {
    summary: ApplySummary,
    interrupted: Option<u8>,
}

impl Applied {
    fn is_success(&self) -> bool {
        self.interrupted.is_none() && self.summary.is_success()
    }
}

/// After a successful apply: where the configuration is, and what a local platform offers.
fn show_what_runs(registered: &Registered, env: &Env, target: &Target) -> Result<(), StacksError> {
    println!("\nConfiguration rendered to {}", rendered_dir(env, target)?);
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

/// Renders every configuration file from the applied stack into `<render dir>/<env>`.
async fn render(engine: &Engine, env: &Env, target: &Target) -> Result<(), StacksError> {
    let outputs = engine
        .state(&env.name)
        .await?
        .map(|s| s.outputs)
        .unwrap_or_default();
    let nodes = NodeFacts::from_outputs(&env.name, &outputs)?;
    let files = kafka_components::render::render(&env.name, &env.config, &nodes)?;
    let out = target.render_dir.join(&env.name);
    kafka_components::render::write(&out, &files)?;
    if !target.json {
        println!("\nRendered {} files to {}:", files.len(), out.display());
        for file in &files {
            println!("  {}", file.path);
        }
    }
    Ok(())
}

async fn finish(
    applied: Option<&Applied>,
    engine: &Engine,
    stack: &str,
    json: bool,
) -> Result<u8, StacksError> {
    let Some(Applied {
        summary,
        interrupted,
    }) = applied
    else {
        return Ok(EXIT_OK);
    };
    if json {
        println!("{}", to_json(&summary));
    } else {
        println!("\n{summary}");
        print_outputs(&engine.outputs(stack).await?, false);
    }
    Ok(match interrupted {
        Some(code) => *code,
        None if summary.is_success() => EXIT_OK,
        None => EXIT_FAILED,
    })
}

fn print_outputs(outputs: &std::collections::BTreeMap<String, Shown>, json: bool) {
    if json {
        println!("{}", to_json(&shown_json(outputs)));
        return;
    }
    if outputs.is_empty() {
        return;
    }
    println!("\nOutputs:");
    for (key, value) in outputs {
        match value {
            Shown::Value(serde_json::Value::Array(items)) => {
                println!("  {key}:");
                for item in items {
                    println!("    {item}");
                }
            }
            other => println!("  {key}: {other}"),
        }
    }
}
