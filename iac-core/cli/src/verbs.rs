//! What each verb does: load the stack's environment, register its program, plan, ask,
//! apply through the engine with progress, and print what came of it.

use std::path::Path;

use iac_core::{
    ApplyOptions, ApplySummary, Engine, Plan, PlanOptions, PlanRecord, Program, Progress, Shown,
    Stack, Targets,
};

use crate::cli::{Planning, RunArgs, Target, Targeting, Verb};
use crate::error::{Error, exit};
use crate::interrupt::Interrupts;
use crate::print::{print_outputs, print_plan, to_json, to_value};
use crate::program::StackProgram;
use crate::state_verbs;

/// Runs the verb the command line names.
pub(crate) async fn run<P: StackProgram>(program: &P, verb: Verb<P>) -> Result<u8, Error> {
    match verb {
        Verb::Preview {
            target,
            planning,
            plan_out,
            detailed_exitcode,
        } => {
            let run = Run::new(program, &target)?;
            run.preview(&planning, plan_out.as_deref(), detailed_exitcode)
                .await
        }
        Verb::Apply {
            target,
            run: args,
            planning,
            plan,
        } => {
            let run = Run::new(program, &target)?;
            run.apply(&args, &planning, plan.as_deref()).await
        }
        Verb::Destroy {
            target,
            run: args,
            targets,
        } => Run::new(program, &target)?.destroy(&args, &targets).await,
        Verb::Refresh { target, targeting } => {
            Run::new(program, &target)?.refresh(&targeting).await
        }
        Verb::Import {
            target,
            type_token,
            name,
            id,
        } => {
            let run = Run::new(program, &target)?;
            run.import(&type_token, &name, &id).await
        }
        Verb::Outputs {
            target,
            show_secrets,
        } => Run::new(program, &target)?.outputs(show_secrets).await,
        Verb::Own(verb) => program.run_verb(verb).await,
        Verb::State { action } => state_verbs::run(&action).await,
    }
}

/// One verb's run of a program on a stack: the target and the environment loaded.
struct Run<'a, P: StackProgram> {
    program: &'a P,
    target: &'a Target<P>,
    env: P::Env,
}

impl<'a, P: StackProgram> Run<'a, P> {
    /// Loads the stack's environment.
    fn new(program: &'a P, target: &'a Target<P>) -> Result<Self, Error> {
        let env = program.load(&target.stack, &target.program)?;
        Ok(Self {
            program,
            target,
            env,
        })
    }

    fn stack(&self) -> &str {
        &self.target.stack
    }

    /// The program registered on a stack of the run's name, and built.
    fn register(&mut self) -> Result<Program, Error> {
        let mut stack = Stack::new(self.target.stack.clone());
        self.program.register(&mut self.env, &mut stack)?;
        Ok(stack.build()?)
    }

    /// The engine on the program's providers.
    async fn engine(&self) -> Result<Engine, Error> {
        let providers = self.program.providers(&self.env).await?;
        self.target.engine(providers)
    }

    /// `preview`: the plan, saved with `--plan-out`; exit 2 for changes with
    /// `--detailed-exitcode`.
    async fn preview(
        mut self,
        planning: &Planning<P::PlanFlags>,
        plan_out: Option<&Path>,
        detailed_exitcode: bool,
    ) -> Result<u8, Error> {
        let json = self.target.json;
        self.program
            .before_plan(&self.env, Some(&planning.targeting.program), json)?;
        let program = self.register()?;
        let engine = self.engine().await?;
        let plan = self.plan_fresh(&engine, &program, planning).await?;
        print_plan(&plan, json);
        if !json {
            self.program.after_preview(&self.env);
        }
        if let Some(path) = plan_out {
            std::fs::write(path, plan.record().to_json()).map_err(|e| Error::PlanFile {
                path: path.to_owned(),
                reason: format!("cannot write the plan: {e}"),
            })?;
            eprintln!("plan saved to {}", path.display());
        }
        Ok(if detailed_exitcode && plan.has_changes() {
            exit::CHANGES
        } else {
            exit::OK
        })
    }

    /// `apply`: a fresh plan (after resolving what an interrupted run left), or exactly a
    /// saved one; then what the program shows.
    async fn apply(
        mut self,
        args: &RunArgs,
        planning: &Planning<P::PlanFlags>,
        saved: Option<&Path>,
    ) -> Result<u8, Error> {
        let flags = saved.is_none().then_some(&planning.targeting.program);
        self.program
            .before_plan(&self.env, flags, self.target.json)?;
        let program = self.register()?;
        let engine = self.engine().await?;
        let summary = match saved {
            Some(path) => {
                let saved = read_plan(path)?;
                self.execute(&engine, &program, Planned::Saved(&saved), args)
                    .await?
            }
            None => {
                self.resolve_interrupted(&engine).await?;
                let fresh = self.plan_fresh(&engine, &program, planning).await?;
                self.execute(&engine, &program, Planned::Fresh(&fresh), args)
                    .await?
            }
        };
        let code = self.finish(summary.as_ref(), &engine).await?;
        if summary.as_ref().is_some_and(Applied::is_success) && !self.target.json {
            self.program.after_apply(&self.env)?;
        }
        Ok(code)
    }

    /// `destroy`: every resource (or `targets` and what depends on them), then what the
    /// program keeps beside the stack when nothing is left.
    async fn destroy(self, args: &RunArgs, targets: &[String]) -> Result<u8, Error> {
        let engine = self.engine().await?;
        self.resolve_interrupted(&engine).await?;
        let covered = if targets.is_empty() {
            Targets::all()
        } else {
            Targets::only(targets.iter().cloned())
        };
        let (program, plan) = engine.plan_destroy(self.stack(), covered).await?;
        let summary = self
            .execute(&engine, &program, Planned::Fresh(&plan), args)
            .await?;
        let code = self.finish(summary.as_ref(), &engine).await?;
        if targets.is_empty() && summary.as_ref().is_some_and(Applied::is_success) {
            self.program.after_destroy(&self.env)?;
        }
        Ok(code)
    }

    /// `refresh`: every resource (or the targets' reach) read, drift recorded.
    async fn refresh(self, targeting: &Targeting<P::PlanFlags>) -> Result<u8, Error> {
        let engine = self.engine().await?;
        let targets = targeting.targets(self.program, &self.env);
        let report = engine
            .refresh_targets(self.stack(), &targets, self.target.parallel)
            .await?;
        if self.target.json {
            println!("{}", to_json(&report));
        } else {
            println!("{report}");
        }
        Ok(if report.errors.is_empty() {
            exit::OK
        } else {
            exit::FAILED
        })
    }

    /// `import`: an object that exists adopted as the program's resource `name`.
    async fn import(mut self, type_token: &str, name: &str, id: &str) -> Result<u8, Error> {
        let program = self.register()?;
        let engine = self.engine().await?;
        let record = engine.import(&program, type_token, name, id).await?;
        eprintln!(
            "imported {} `{}` as `{name}` into stack `{}`: run preview to see what the program would change",
            record.type_token,
            record.id,
            self.stack()
        );
        Ok(exit::OK)
    }

    /// `outputs`: the stack's outputs, secrets as `[secret]` unless `show_secrets`.
    async fn outputs(self, show_secrets: bool) -> Result<u8, Error> {
        let engine = self.target.state_engine()?;
        let outputs = if show_secrets {
            engine
                .state(self.stack())
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
            engine.outputs(self.stack()).await?
        };
        print_outputs(&outputs, self.target.json);
        Ok(exit::OK)
    }

    /// Plans the program, after a refresh with `--refresh`, replacing what `--replace` names.
    async fn plan_fresh(
        &self,
        engine: &Engine,
        program: &Program,
        planning: &Planning<P::PlanFlags>,
    ) -> Result<Plan, Error> {
        let targets = planning.targeting.targets(self.program, &self.env);
        if planning.refresh {
            let report = engine
                .refresh_targets(program.stack(), &targets, self.target.parallel)
                .await?;
            if !self.target.json {
                println!("{report}\n");
            }
        }
        let options = PlanOptions {
            replace: planning.replace.iter().cloned().collect(),
            targets,
        };
        Ok(engine.preview_with(program, &options).await?)
    }

    /// Before planning: looks up what an interrupted run (or a create whose answer was lost)
    /// may have made, and records it, so nothing is created twice and nothing waits for the
    /// user.
    async fn resolve_interrupted(&self, engine: &Engine) -> Result<(), Error> {
        let report = engine
            .resolve_interrupted(self.stack(), self.target.parallel)
            .await?;
        if !report.drift.is_empty() && !self.target.json {
            println!("Resolved operations an earlier run left unfinished:");
            for d in &report.drift {
                println!("{d}");
            }
            println!();
        }
        match report.errors.first() {
            None => Ok(()),
            Some(failure) => Err(Error::Unresolved {
                name: failure.name.clone(),
                error: failure.error.clone(),
            }),
        }
    }

    /// Shows what is planned, asks unless `--yes`, and applies it with progress, a first
    /// interrupt stopping it between steps.
    async fn execute(
        &self,
        engine: &Engine,
        program: &Program,
        planned: Planned<'_>,
        args: &RunArgs,
    ) -> Result<Option<Applied>, Error> {
        let json = self.target.json;
        let record = match planned {
            Planned::Fresh(plan) => plan.record(),
            Planned::Saved(record) => record,
        };
        // With --json the plan is printed with the summary, as one document.
        if !json {
            print!("{}", iac_core::render_preview(record));
        }
        let has_changes = record.has_changes();
        if has_changes && !args.yes && !confirm(program.stack())? {
            eprintln!("nothing changed");
            return Ok(None);
        }
        // With --json the output is one document: no progress lines.
        let progress = (!json).then(Progress::stdout);
        let options = ApplyOptions {
            parallelism: self.target.parallel,
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
            plan: json.then(|| to_value(record)),
            summary: result?,
            interrupted: interrupts.exit_code(),
        }))
    }

    /// Prints what an apply did and the stack's outputs; its exit code.
    async fn finish(&self, applied: Option<&Applied>, engine: &Engine) -> Result<u8, Error> {
        let Some(Applied {
            plan,
            summary,
            interrupted,
        }) = applied
        else {
            return Ok(exit::OK);
        };
        if self.target.json {
            let document = serde_json::json!({ "plan": plan, "summary": to_value(summary) });
            println!("{}", to_json(&document));
        } else {
            println!("\n{summary}");
            print_outputs(&engine.outputs(self.stack()).await?, false);
        }
        Ok(match interrupted {
            Some(code) => *code,
            None if summary.is_success() => exit::OK,
            None => exit::FAILED,
        })
    }
}

/// A plan `preview --plan-out` saved.
fn read_plan(path: &Path) -> Result<PlanRecord, Error> {
    let refused = |reason: String| Error::PlanFile {
        path: path.to_owned(),
        reason,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| refused(format!("cannot read the plan: {e}")))?;
    PlanRecord::from_json(&text).map_err(|e| refused(e.to_string()))
}

enum Planned<'a> {
    Fresh(&'a Plan),
    Saved(&'a PlanRecord),
}

/// Asks before changing anything, unless `--yes`; refuses to guess without a terminal.
fn confirm(stack: &str) -> Result<bool, Error> {
    iac_core::confirm(&format!("Apply these changes to stack {stack}?"))
        .map_err(Error::io("cannot ask on the terminal"))?
        .ok_or(Error::NeedsConfirmation)
}

/// What an apply did, and the signal that stopped it, if one did.
struct Applied {
    /// The plan applied, as `--json` prints it with the summary.
    plan: Option<serde_json::Value>,
    summary: ApplySummary,
    interrupted: Option<u8>,
}

impl Applied {
    fn is_success(&self) -> bool {
        self.interrupted.is_none() && self.summary.is_success()
    }
}
