//! What each verb does: load the environment, build and register its program, plan, ask,
//! apply through the engine with progress, and print what came of it.

use std::path::Path;

use iac_core::{
    ApplyOptions, ApplySummary, Engine, Plan, PlanOptions, PlanRecord, Program, Progress, Shown,
    Targets,
};
use kafka_components::{NodeFacts, PlatformConfig, RenderError};

use crate::cli::{Planning, RunArgs, Target, Targeting};
use crate::environment::{Env, build_programs, load, program};
use crate::error::{EXIT_CHANGES, EXIT_FAILED, EXIT_OK, StacksError};
use crate::interrupt::Interrupts;
use crate::print::{print_outputs, print_plan, show_deploy_off, show_what_runs, to_json};
use crate::wiring::{engine, state_engine};

/// `preview`: the plan, saved with `--plan-out`; exit 2 for changes with `--detailed-exitcode`.
pub(crate) async fn preview(
    target: &Target,
    planning: &Planning,
    plan_out: Option<&Path>,
    detailed_exitcode: bool,
) -> Result<u8, StacksError> {
    let env = load(target)?;
    build_programs(&env, target.json, Some(&planning.targeting))?;
    let (program, _) = program(&env, target)?;
    let engine = engine(&env, target).await?;
    let plan = plan_fresh(&engine, &program, &env.config, target, planning).await?;
    print_plan(&plan, target.json);
    if !target.json {
        show_deploy_off(&env);
    }
    if let Some(path) = plan_out {
        std::fs::write(path, plan.record().to_json()).map_err(|e| StacksError::PlanFile {
            path: path.to_owned(),
            reason: format!("cannot write the plan: {e}"),
        })?;
        eprintln!("plan saved to {}", path.display());
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// `apply`: a fresh plan (after resolving what an interrupted run left), or exactly a saved
/// one; then what runs.
pub(crate) async fn apply(
    target: &Target,
    run: &RunArgs,
    planning: &Planning,
    saved: Option<&Path>,
) -> Result<u8, StacksError> {
    let env = load(target)?;
    let targeting = saved.is_none().then_some(&planning.targeting);
    build_programs(&env, target.json, targeting)?;
    let (program, registered) = program(&env, target)?;
    let engine = engine(&env, target).await?;
    let summary = match saved {
        Some(path) => {
            let saved = read_plan(path)?;
            execute(&engine, &program, Planned::Saved(&saved), target, run).await?
        }
        None => {
            resolve_interrupted(&engine, &env.name, target).await?;
            let fresh = plan_fresh(&engine, &program, &env.config, target, planning).await?;
            execute(&engine, &program, Planned::Fresh(&fresh), target, run).await?
        }
    };
    let code = finish(summary.as_ref(), &engine, &env.name, target.json).await?;
    if summary.as_ref().is_some_and(Applied::is_success) && !target.json {
        show_what_runs(&registered, &env, target)?;
    }
    Ok(code)
}

/// A plan `preview --plan-out` saved.
fn read_plan(path: &Path) -> Result<PlanRecord, StacksError> {
    let refused = |reason: String| StacksError::PlanFile {
        path: path.to_owned(),
        reason,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| refused(format!("cannot read the plan: {e}")))?;
    PlanRecord::from_json(&text).map_err(|e| refused(e.to_string()))
}

/// `destroy`: every resource (or `targets` and what depends on them), then the rendered
/// folder when nothing is left.
pub(crate) async fn destroy(
    target: &Target,
    run: &RunArgs,
    targets: &[String],
) -> Result<u8, StacksError> {
    let env = load(target)?;
    let engine = engine(&env, target).await?;
    resolve_interrupted(&engine, &env.name, target).await?;
    let covered = if targets.is_empty() {
        Targets::all()
    } else {
        Targets::only(targets.iter().cloned())
    };
    let (program, plan) = engine.plan_destroy(&env.name, covered).await?;
    let summary = execute(&engine, &program, Planned::Fresh(&plan), target, run).await?;
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

/// `refresh`: every resource (or the targets' reach) read, drift recorded.
pub(crate) async fn refresh(target: &Target, targeting: &Targeting) -> Result<u8, StacksError> {
    let env = load(target)?;
    let engine = engine(&env, target).await?;
    let report = engine
        .refresh_targets(&env.name, &targeting.targets(&env.config), target.parallel)
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

/// `import`: an object that exists adopted as the program's resource `name`.
pub(crate) async fn import(
    target: &Target,
    type_token: &str,
    name: &str,
    id: &str,
) -> Result<u8, StacksError> {
    let env = load(target)?;
    let (program, _) = program(&env, target)?;
    let engine = engine(&env, target).await?;
    let record = engine.import(&program, type_token, name, id).await?;
    eprintln!(
        "imported {} `{}` as `{name}` into stack `{}`: run preview to see what the program would change",
        record.type_token, record.id, env.name
    );
    Ok(EXIT_OK)
}

/// `render`: the configuration files written again from the applied stack.
pub(crate) async fn render(target: &Target) -> Result<u8, StacksError> {
    let env = load(target)?;
    let engine = engine(&env, target).await?;
    write_rendered(&engine, &env, target).await?;
    Ok(EXIT_OK)
}

/// `outputs`: the stack's outputs, secrets as `[secret]` unless `show_secrets`.
pub(crate) async fn outputs(target: &Target, show_secrets: bool) -> Result<u8, StacksError> {
    let env = load(target)?;
    let engine = state_engine(target)?;
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

/// Plans the program, after a refresh with `--refresh`, replacing what `--replace` names.
async fn plan_fresh(
    engine: &Engine,
    program: &Program,
    config: &PlatformConfig,
    target: &Target,
    planning: &Planning,
) -> Result<Plan, StacksError> {
    let targets = planning.targeting.targets(config);
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

/// Renders every configuration file from the applied stack into `<render dir>/<env>`.
async fn write_rendered(engine: &Engine, env: &Env, target: &Target) -> Result<(), StacksError> {
    let outputs = engine
        .state(&env.name)
        .await?
        .map(|s| s.outputs)
        .unwrap_or_default();
    let nodes = NodeFacts::from_outputs(&env.name, &outputs).map_err(RenderError::from)?;
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
