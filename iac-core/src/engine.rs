//! The engine: the one entry point a stack program or CLI calls.
//!
//! It owns the order of operations around the planner and the executor: take the stack lock,
//! load and decrypt state, refuse what must be refused (interrupted operations, a plan made
//! against other state, a saved plan the program no longer matches), run, and compact the
//! state when done. It never talks to a cloud API itself; providers do.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::apply::{ApplyOptions, ApplySummary, Executor, OrderingError};
use crate::evaluate::program_record;
use crate::plan::{Plan, PlanError, PlanErrors, PlanOptions};
use crate::provider::{ImportRequest, ProviderError, Providers, ReadRequest, ReadResponse};
use crate::record::{
    BaseState, InterruptedOperation, Operation, PlanRecord, Shown, StepRecord, interrupted,
};
use crate::reference::{ReferenceProvider, STACK_REFERENCE};
use crate::refresh::{self, RefreshReport};
use crate::secrets::{Cipher, Passphrase, SecretsError};
use crate::stack::{NodeKind, Program, RegistrationErrors};
use crate::state::load::{Loaded, load_sealed, load_state};
use crate::state::writer::StateWriter;
use crate::state::{
    Checkpoint, LockInfo, Mutation, PendingKind, ResourceState, StateBackend, StateError, StateLock,
};
use crate::target::Targets;

/// How often a command waiting for a lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(250);

/// Engine failures (as opposed to individual step failures, which an [`ApplySummary`] lists).
///
/// Its `Debug` is its message, so `?` in a `main` returning `Result<(), EngineError>` (or a
/// boxed error) prints what a person can act on, not the variant's fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The plan cannot be made.
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    /// State could not be read, written or locked.
    #[error(transparent)]
    State(StateError),
    /// Secrets could not be sealed or opened.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The state changed after the plan was made.
    #[error(
        "the state of stack `{stack}` changed since this plan was made (serial {planned} -> {current}): run preview again"
    )]
    StalePlan {
        /// The stack.
        stack: String,
        /// Serial the plan was made against.
        planned: u64,
        /// Serial now.
        current: u64,
    },
    /// The plan belongs to another stack.
    #[error(
        "this plan is for stack `{plan_stack}`, not `{stack}`: use the plan made for `{stack}`"
    )]
    WrongStack {
        /// The stack being applied.
        stack: String,
        /// The plan's stack.
        plan_stack: String,
    },
    /// A saved plan no longer matches what the program would do.
    #[error(
        "the program no longer matches the saved plan for stack `{stack}`:\n{}\nmake a new plan",
        differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    PlanMismatch {
        /// The stack.
        stack: String,
        /// What differs.
        differences: Vec<String>,
    },
    /// Operations of an interrupted run must be resolved first.
    #[error(
        "stack `{stack}` has operations from an interrupted run:\n{}\nrun refresh to resolve them, then apply again",
        operations.iter().map(|o| format!("  - {o}")).collect::<Vec<_>>().join("\n")
    )]
    Interrupted {
        /// The stack.
        stack: String,
        /// The operations.
        operations: Vec<InterruptedOperation>,
    },
    /// A state command named a resource the stack does not record.
    #[error("stack `{stack}` records no resource `{name}`")]
    NoSuchResource {
        /// The stack.
        stack: String,
        /// The name given.
        name: String,
    },
    /// A state command was refused: what would break, and how to go on.
    #[error("`{name}` in stack `{stack}`: {reason}")]
    StateChangeRefused {
        /// The stack.
        stack: String,
        /// The resource.
        name: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The provider could not import an object.
    #[error("cannot import `{id}` as `{name}` into stack `{stack}`: {error}")]
    Import {
        /// The stack.
        stack: String,
        /// The resource.
        name: String,
        /// The object's id.
        id: String,
        /// What the provider said.
        error: Box<ProviderError>,
    },
    /// The plan's operations cannot be ordered.
    #[error(transparent)]
    Ordering(#[from] OrderingError),
    /// The program (or the stack name) is invalid.
    #[error(transparent)]
    Program(#[from] RegistrationErrors),
}

/// A secret that could not be sealed or opened is a [`EngineError::Secrets`] wherever it
/// was found.
impl From<StateError> for EngineError {
    fn from(error: StateError) -> Self {
        match error {
            StateError::Secrets(e) => EngineError::Secrets(e),
            other => EngineError::State(other),
        }
    }
}

impl fmt::Debug for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl EngineError {
    /// Whether the person running the program must change something (the program, a saved
    /// plan, the passphrase, or wait for another run), as opposed to a provider or the state
    /// storage having failed.
    pub fn is_user_error(&self) -> bool {
        match self {
            EngineError::Plan(errors) => errors.0.iter().all(PlanError::is_user_error),
            EngineError::StalePlan { .. }
            | EngineError::WrongStack { .. }
            | EngineError::PlanMismatch { .. }
            | EngineError::Interrupted { .. }
            | EngineError::Ordering(_)
            | EngineError::NoSuchResource { .. }
            | EngineError::StateChangeRefused { .. }
            | EngineError::Program(_) => true,
            EngineError::Import { error, .. } => error.refused,
            EngineError::State(e) => e.is_user_error(),
            EngineError::Secrets(e) => e.is_user_error(),
        }
    }
}

/// Plans, applies and refreshes stacks with a set of providers and a state backend.
#[derive(Clone)]
pub struct Engine {
    providers: Providers,
    backend: Arc<dyn StateBackend>,
    passphrase: Option<Passphrase>,
    lock_timeout: Duration,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

/// The resources of `state` a refresh of `refresh` reads (none when only pending operations
/// are resolved), and how many it leaves unread.
fn refreshed<'s>(
    stack: &str,
    state: &'s Checkpoint,
    refresh: Option<&Targets>,
) -> Result<(Vec<&'s ResourceState>, usize), EngineError> {
    let reach = match refresh {
        Some(targets) if !targets.is_all() => Some(
            crate::target::reach(
                targets,
                None,
                Some(state),
                &crate::target::RecordedDependents::new(Some(state)),
            )
            .map_err(|unknown| EngineError::NoSuchResource {
                stack: stack.to_owned(),
                name: unknown.join("`, `"),
            })?,
        ),
        _ => None,
    };
    let (resources, untargeted): (Vec<&ResourceState>, Vec<&ResourceState>) = state
        .resources
        .iter()
        .filter(|r| refresh.is_some() && r.kind == NodeKind::Resource)
        .partition(|r| crate::target::covers(reach.as_ref(), &r.name));
    Ok((resources, untargeted.len()))
}

/// The program node an import of `name` as a `type_token` adopts the object as, or why
/// there is none.
fn importable_node(program: &Program, type_token: &str, name: &str) -> Result<usize, String> {
    let node = match program.index.get(name) {
        Some(&n) if program.nodes[n].registration.kind == NodeKind::Resource => n,
        _ => {
            return Err(
                "the program has no resource of that name: add it to the program first".into(),
            );
        }
    };
    let registered = &program.nodes[node].registration.type_token;
    if registered != type_token {
        return Err(format!(
            "the program makes it a `{registered}`, not a `{type_token}`"
        ));
    }
    Ok(node)
}

/// Refuses an import when `state` records `name` or the object `id` already.
fn unrecorded(state: &Checkpoint, name: &str, id: &str) -> Result<(), String> {
    if state.resource(name).is_some() {
        return Err(
            "the stack records it already: forget it first (its object is left as it is)".into(),
        );
    }
    match state.resources.iter().find(|r| r.id == id) {
        Some(other) => Err(format!(
            "the stack records `{id}` already, as `{}`",
            other.name
        )),
        None => Ok(()),
    }
}

/// Refuses to change a stack whose interrupted run's operations are still pending.
fn refuse_interrupted(stack: &str, state: &Checkpoint) -> Result<(), EngineError> {
    if state.pending.is_empty() {
        return Ok(());
    }
    Err(EngineError::Interrupted {
        stack: stack.to_owned(),
        operations: interrupted(state),
    })
}

fn needs_secrets(program: &Program) -> bool {
    program.nodes.iter().any(|n| {
        !n.registration.secret_outputs.is_empty()
            || n.registration.inputs.values().any(|o| o.is_secret())
    }) || program.outputs.values().any(|o| o.is_secret())
}

impl Engine {
    /// An engine with these providers, storing state in `backend`.
    pub fn new(providers: Providers, backend: impl StateBackend) -> Self {
        let mut engine = Self {
            providers,
            backend: Arc::new(backend),
            passphrase: None,
            lock_timeout: Duration::ZERO,
        };
        engine.provide_references();
        engine
    }

    /// Stack references read this engine's backend, with its passphrase.
    fn provide_references(&mut self) {
        let provider = ReferenceProvider {
            backend: Arc::clone(&self.backend),
            passphrase: self.passphrase.clone(),
        };
        self.providers
            .register(Arc::new(provider), [STACK_REFERENCE]);
    }

    /// How long a command waits for a stack locked by a live run before it gives up
    /// (none by default: it fails at once, naming the holder).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Sets the passphrase that encrypts the stacks' secrets.
    pub fn with_passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrase = Some(passphrase);
        self.provide_references();
        self
    }

    async fn load(&self, stack: &str) -> Result<Loaded, EngineError> {
        load_state(&self.backend, self.passphrase.as_ref(), stack)
            .await
            .map_err(EngineError::from)
    }

    fn require_passphrase(&self, program: &Program) -> Result<(), EngineError> {
        if needs_secrets(program) && self.passphrase.is_none() {
            return Err(SecretsError::NoPassphrase {
                stack: program.stack.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Plans the program against the stack's state. Reads data sources; changes nothing.
    pub async fn preview(&self, program: &Program) -> Result<Plan, EngineError> {
        self.preview_with(program, &PlanOptions::default()).await
    }

    /// [`Engine::preview`] with options: resources to replace whatever changed.
    pub async fn preview_with(
        &self,
        program: &Program,
        options: &PlanOptions,
    ) -> Result<Plan, EngineError> {
        self.require_passphrase(program)?;
        let loaded = self.load(&program.stack).await?;
        Ok(crate::plan::plan(program, loaded.plain.as_ref(), &self.providers, options).await?)
    }

    /// Takes the stack's lock, waiting up to the lock timeout for a live holder.
    async fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, EngineError> {
        let deadline = Instant::now() + self.lock_timeout;
        loop {
            match self.backend.lock(stack, operation) {
                Err(StateError::Locked { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                other => return Ok(other?),
            }
        }
    }

    fn check_base(stack: &str, loaded: &Loaded, planned: &BaseState) -> Result<(), EngineError> {
        let current = BaseState::of(loaded.plain.as_ref());
        if &current != planned {
            return Err(EngineError::StalePlan {
                stack: stack.to_owned(),
                planned: planned.serial,
                current: current.serial,
            });
        }
        match &loaded.plain {
            Some(state) => refuse_interrupted(stack, state),
            None => Ok(()),
        }
    }

    /// Applies a plan made by [`Engine::preview`] for this program.
    pub async fn apply(
        &self,
        program: &Program,
        plan: &Plan,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        if plan.record.stack != program.stack {
            return Err(EngineError::WrongStack {
                stack: program.stack.clone(),
                plan_stack: plan.record.stack.clone(),
            });
        }
        self.require_passphrase(program)?;
        let _lock = self.lock(&program.stack, "apply").await?;
        let loaded = self.load(&program.stack).await?;
        Self::check_base(&program.stack, &loaded, &plan.record.base)?;
        self.execute(program, plan, loaded, options).await
    }

    /// Deletes every resource of the stack (dependents first): the plan of an empty program,
    /// applied.
    pub async fn destroy(
        &self,
        stack: &str,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        let (program, plan) = self.plan_destroy(stack, Targets::all()).await?;
        self.apply(&program, &plan, options).await
    }

    /// The plan of deleting `targets` and what depends on them (dependents first), or every
    /// resource with [`Targets::all`], with the empty program to apply it with: what
    /// [`Engine::destroy`] applies, for a caller that shows the plan and asks first.
    pub async fn plan_destroy(
        &self,
        stack: &str,
        targets: Targets,
    ) -> Result<(Program, Plan), EngineError> {
        let program = Program::empty(stack)?;
        let targets = if targets.is_all() {
            targets
        } else {
            targets.with_dependents()
        };
        let options = PlanOptions {
            targets,
            ..PlanOptions::default()
        };
        let plan = self.preview_with(&program, &options).await?;
        Ok((program, plan))
    }

    /// Applies exactly a saved plan: refused if the state changed since it was made or if
    /// the program would now do anything different.
    pub async fn apply_saved(
        &self,
        program: &Program,
        saved: &PlanRecord,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        if saved.stack != program.stack {
            return Err(EngineError::WrongStack {
                stack: program.stack.clone(),
                plan_stack: saved.stack.clone(),
            });
        }
        self.require_passphrase(program)?;
        let _lock = self.lock(&program.stack, "apply").await?;
        let loaded = self.load(&program.stack).await?;
        Self::check_base(&program.stack, &loaded, &saved.base)?;
        let planning = PlanOptions {
            replace: saved.replace.clone(),
            targets: saved.targets.clone(),
        };
        let fresh =
            crate::plan::plan(program, loaded.plain.as_ref(), &self.providers, &planning).await?;
        let mut differences = compare_steps(&saved.steps, &fresh.record.steps);
        if saved.moves != fresh.record.moves {
            differences.push(
                "the resources moved to a new name (aliases) differ from the saved plan's"
                    .to_owned(),
            );
        }
        if saved.rolls != fresh.record.rolls {
            differences.push(
                "the rolling groups (members, order or gate) differ from the saved plan's"
                    .to_owned(),
            );
        }
        if !differences.is_empty() {
            return Err(EngineError::PlanMismatch {
                stack: program.stack.clone(),
                differences,
            });
        }
        self.execute(program, &fresh, loaded, options).await
    }

    /// A state writer continuing from `sealed`, with the stack's cipher: made (and its header
    /// committed) the first time the program has a secret.
    async fn writer(
        &self,
        program: &Program,
        sealed: Checkpoint,
        cipher: Option<Cipher>,
    ) -> Result<StateWriter, EngineError> {
        let (cipher, new_header) = match (cipher, &self.passphrase) {
            (Some(c), _) => (Some(c), None),
            (None, Some(p)) if needs_secrets(program) => {
                let (c, header) = Cipher::create(p, &program.stack)?;
                (Some(c), Some(header))
            }
            (None, _) => (None, None),
        };
        let writer = StateWriter::start(Arc::clone(&self.backend), sealed, cipher);
        if let Some(header) = new_header {
            writer.commit(vec![Mutation::Encryption { header }]).await?;
        }
        Ok(writer)
    }

    /// Adopts the object `id` that exists already as the program's resource `name` (of type
    /// `type_token`, as the program registers it): the provider reads it and marks it as this
    /// stack's, and it is recorded with its inputs as they are, so the next preview shows
    /// what the program would change. Refused when the program has no such resource, the
    /// stack records it already (or records the object under another name), or the object
    /// does not exist or belongs to another stack or resource.
    pub async fn import(
        &self,
        program: &Program,
        type_token: &str,
        name: &str,
        id: &str,
    ) -> Result<ResourceState, EngineError> {
        let stack = &program.stack;
        let refuse = |reason: String| EngineError::StateChangeRefused {
            stack: stack.clone(),
            name: name.to_owned(),
            reason,
        };
        let node = importable_node(program, type_token, name).map_err(refuse)?;
        self.require_passphrase(program)?;
        let _lock = self.lock(stack, "import").await?;
        let loaded = self.load(stack).await?;
        if let Some(state) = &loaded.plain {
            refuse_interrupted(stack, state)?;
            unrecorded(state, name, id).map_err(refuse)?;
        }
        let provider = self
            .providers
            .get(type_token)
            .ok_or_else(|| refuse(format!("no provider is registered for type `{type_token}`")))?;
        let failed = |error| EngineError::Import {
            stack: stack.clone(),
            name: name.to_owned(),
            id: id.to_owned(),
            error: Box::new(error),
        };
        let request = ImportRequest {
            stack,
            type_token,
            name,
            id,
        };
        let found = provider
            .import(&request)
            .await
            .map_err(failed)?
            .ok_or_else(|| {
                failed(ProviderError::new(format!("no {type_token} has the id `{id}`")).refused())
            })?;
        let record = program_record(
            program,
            node,
            found.id,
            found.inputs.unwrap_or_default(),
            found.outputs,
        );
        // The writer continues from the state as stored: the sealed copy when there is one.
        let stored = loaded
            .sealed
            .or(loaded.plain)
            .unwrap_or_else(|| Checkpoint::new(stack));
        let writer = self.writer(program, stored, loaded.cipher).await?;
        writer
            .commit(vec![Mutation::Put {
                resource: record.clone(),
                end: None,
            }])
            .await?;
        writer.finish().await?;
        Ok(record)
    }

    async fn execute(
        &self,
        program: &Program,
        plan: &Plan,
        loaded: Loaded,
        options: &ApplyOptions,
    ) -> Result<ApplySummary, EngineError> {
        let started = Instant::now();
        let stored = loaded
            .plain
            .unwrap_or_else(|| Checkpoint::new(&program.stack));
        let previous_outputs = stored.outputs.clone();
        let previous_secret = stored.secret_outputs.clone();
        // The writer continues from the state as stored: the sealed copy when there is one.
        let sealed = loaded.sealed.unwrap_or(stored);
        let writer = self.writer(program, sealed, loaded.cipher).await?;
        // Moves first: every step was planned against the moved records.
        if !plan.record.moves.is_empty() {
            let renames = plan.record.moves.iter().map(|m| Mutation::Rename {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            writer.commit(renames.collect()).await?;
        }
        let executor = Executor::new(
            program,
            plan,
            &self.providers,
            &writer,
            options.events.as_ref(),
            options.stop.clone(),
        );
        let walk = executor.walk(options.parallelism).await?;
        let (outputs, secret_outputs) = executor.stack_outputs(
            &previous_outputs,
            &previous_secret,
            walk.failed.is_empty() && walk.skipped.is_empty(),
        );
        if walk.fatal.is_none()
            && (outputs != previous_outputs || secret_outputs != previous_secret)
        {
            writer
                .commit(vec![Mutation::Outputs {
                    outputs: outputs.clone(),
                    secret_outputs: secret_outputs.clone(),
                }])
                .await?;
        }
        drop(executor);
        writer.finish().await?;
        if let Some(fatal) = walk.fatal {
            return Err(fatal.into());
        }
        Ok(ApplySummary {
            stack: program.stack.clone(),
            counts: walk.counts,
            failed: walk.failed,
            skipped: walk.skipped,
            untargeted: plan.record.untargeted,
            duration: started.elapsed(),
            outputs: Shown::map(&outputs, &secret_outputs),
        })
    }

    /// Reads every recorded resource through its provider, records drift, removes what is
    /// gone, and resolves operations left by an interrupted run.
    pub async fn refresh(
        &self,
        stack: &str,
        parallelism: usize,
    ) -> Result<RefreshReport, EngineError> {
        self.refresh_targets(stack, &Targets::all(), parallelism)
            .await
    }

    /// [`Engine::refresh`] of only the targets and what they need (recorded dependencies;
    /// with [`Targets::dependents`] also recorded dependents); pending operations are always
    /// resolved. Each target must be recorded.
    pub async fn refresh_targets(
        &self,
        stack: &str,
        targets: &Targets,
        parallelism: usize,
    ) -> Result<RefreshReport, EngineError> {
        self.reconcile(stack, parallelism, Some(targets)).await
    }

    /// Resolves only the operations an interrupted run left (a create whose outcome is
    /// unknown is looked up and adopted if it happened): what an apply needs before it can
    /// plan. When there are none it takes no lock, derives no key and reads nothing through
    /// a provider.
    pub async fn resolve_interrupted(
        &self,
        stack: &str,
        parallelism: usize,
    ) -> Result<RefreshReport, EngineError> {
        let pending = load_sealed(&self.backend, stack)
            .await?
            .is_some_and(|state| !state.pending.is_empty());
        if !pending {
            return Ok(RefreshReport::new(stack));
        }
        self.reconcile(stack, parallelism, None).await
    }

    /// Refresh of what `refresh` covers, or (`None`) only the resolution of pending
    /// operations.
    async fn reconcile(
        &self,
        stack: &str,
        parallelism: usize,
        refresh: Option<&Targets>,
    ) -> Result<RefreshReport, EngineError> {
        let _lock = self.lock(stack, "refresh").await?;
        let loaded = self.load(stack).await?;
        let mut report = RefreshReport::new(stack);
        let Some(plain) = loaded.plain.as_ref() else {
            return Ok(report);
        };
        let (resources, untargeted) = refreshed(stack, plain, refresh)?;
        report.untargeted = untargeted;
        let pending_reads = plain.pending.values().map(|p| {
            self.read(ReadRequest {
                stack,
                type_token: &p.type_token,
                name: &p.name,
                id: p.id.as_deref(),
                inputs: &p.inputs,
                outputs: None,
                created_since: (p.kind == PendingKind::Create)
                    .then(|| humantime::parse_rfc3339(&p.started).ok())
                    .flatten(),
            })
        });
        let resource_reads = resources.iter().map(|r| {
            self.read(ReadRequest {
                stack,
                type_token: &r.type_token,
                name: &r.name,
                id: Some(&r.id),
                inputs: &r.inputs,
                outputs: Some(&r.outputs),
                created_since: None,
            })
        });
        // One bounded stream for both, pending operations first.
        let mut found: Vec<_> = stream::iter(pending_reads.chain(resource_reads))
            .buffered(parallelism.max(1))
            .collect()
            .await;
        let resource_found = found.split_off(plain.pending.len());
        let mut mutations = Vec::new();
        for (p, found) in plain.pending.values().zip(found) {
            let reconciled = found.map(|found| {
                let existing = plain
                    .resources
                    .iter()
                    .find(|r| Some(&r.id) == p.id.as_ref() && r.name == p.name);
                Some(refresh::reconcile_pending(p, found.as_ref(), existing))
            });
            report.add(&p.name, &p.type_token, reconciled, &mut mutations);
        }
        for (r, found) in resources.into_iter().zip(resource_found) {
            let reconciled = found.map(|found| refresh::reconcile_resource(r, found.as_ref()));
            report.add(&r.name, &r.type_token, reconciled, &mut mutations);
        }
        if !mutations.is_empty() {
            let sealed = loaded.sealed.unwrap_or_else(|| plain.clone());
            let writer = StateWriter::start(Arc::clone(&self.backend), sealed, loaded.cipher);
            writer.commit(mutations).await?;
            writer.finish().await?;
        }
        Ok(report)
    }

    /// Reads one resource through its provider; the error as the report shows it.
    async fn read(&self, request: ReadRequest<'_>) -> Result<Option<ReadResponse>, String> {
        let type_token = request.type_token;
        let provider = self
            .providers
            .get(type_token)
            .ok_or_else(|| format!("no provider is registered for type `{type_token}`"))?;
        provider
            .read(&request)
            .await
            .map_err(|e| format!("read failed: {e}"))
    }

    /// The stack's outputs, secrets shown as `[secret]`.
    pub async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, Shown>, EngineError> {
        let loaded = self.load(stack).await?;
        Ok(loaded
            .plain
            .map(|c| Shown::map(&c.outputs, &c.secret_outputs))
            .unwrap_or_default())
    }

    /// The stack's state with secrets decrypted (requires the passphrase if it has any).
    pub async fn state(&self, stack: &str) -> Result<Option<Checkpoint>, EngineError> {
        Ok(self.load(stack).await?.plain)
    }

    /// Forgets a resource: its records leave the state and the resource is left as it is
    /// (the next preview would create it again if the program still has it). Refused for a
    /// protected resource and one that recorded resources depend on, unless `force`; and
    /// while an interrupted run's operations are pending. Returns the forgotten records.
    pub async fn forget(
        &self,
        stack: &str,
        name: &str,
        force: bool,
    ) -> Result<Vec<ResourceState>, EngineError> {
        self.change_state(stack, name, "state delete", |checkpoint| {
            let refuse = |reason: String| EngineError::StateChangeRefused {
                stack: stack.to_owned(),
                name: name.to_owned(),
                reason,
            };
            if !force
                && checkpoint
                    .resources
                    .iter()
                    .any(|r| r.name == name && r.protect)
            {
                return Err(refuse(
                    "it is protected: remove `protect` from the program first, or force it".into(),
                ));
            }
            let dependents = checkpoint.resources.dependents(name);
            if !force && !dependents.is_empty() {
                return Err(refuse(format!(
                    "{} depend on it: forget them first, or force it",
                    dependents
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Ok(checkpoint.resources.take(name))
        })
        .await
    }

    /// Renames a resource in the state, to follow a rename in the program: it is then moved,
    /// not replaced. The records that depend on it follow. Refused when `new` is recorded.
    pub async fn rename(&self, stack: &str, old: &str, new: &str) -> Result<(), EngineError> {
        self.change_state(stack, old, "state rename", |checkpoint| {
            if checkpoint.resources.iter().any(|r| r.name == new) {
                return Err(EngineError::StateChangeRefused {
                    stack: stack.to_owned(),
                    name: old.to_owned(),
                    reason: format!("the stack records `{new}` already: forget or rename it first"),
                });
            }
            checkpoint.resources.rename(old, new);
            Ok(())
        })
        .await
    }

    /// Runs `change` on the stored state under the stack's lock (secrets stay sealed) and
    /// stores the result as the next serial; `name` must be recorded.
    async fn change_state<T>(
        &self,
        stack: &str,
        name: &str,
        operation: &str,
        change: impl FnOnce(&mut Checkpoint) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let _lock = self.lock(stack, operation).await?;
        let mut checkpoint = load_sealed(&self.backend, stack)
            .await?
            .filter(|c| c.resources.iter().any(|r| r.name == name))
            .ok_or_else(|| EngineError::NoSuchResource {
                stack: stack.to_owned(),
                name: name.to_owned(),
            })?;
        refuse_interrupted(stack, &checkpoint)?;
        let changed = change(&mut checkpoint)?;
        checkpoint.serial += 1;
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || backend.save(&checkpoint))
            .await
            .map_err(|e| StateError::WriterGone {
                reason: e.to_string(),
            })??;
        Ok(changed)
    }

    /// Breaks the stack's lock whatever host it was taken on (refused while its holder is
    /// alive on this one), returning who held it.
    pub fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, EngineError> {
        Ok(self.backend.break_lock(stack)?)
    }

    /// Clears a lock left by a run on this host that is gone (killed, crashed), returning
    /// who held it. Every command does this by itself; call it to tell the user.
    pub fn take_over_stale_lock(&self, stack: &str) -> Result<Option<LockInfo>, EngineError> {
        Ok(self.backend.take_over(stack)?)
    }
}

fn compare_steps(saved: &[StepRecord], fresh: &[StepRecord]) -> Vec<String> {
    let key = |s: &StepRecord| (s.name.clone(), s.op == Operation::Delete);
    let fresh_by: HashMap<_, &StepRecord> = fresh.iter().map(|s| (key(s), s)).collect();
    let saved_by: HashMap<_, &StepRecord> = saved.iter().map(|s| (key(s), s)).collect();
    let mut out = Vec::new();
    for s in saved {
        match fresh_by.get(&key(s)) {
            None => out.push(format!(
                "`{}`: the saved plan would {} it; the program now would not",
                s.name,
                s.op.word()
            )),
            Some(f) if f.op != s.op => out.push(format!(
                "`{}`: the saved plan would {} it; the program now would {} it",
                s.name,
                s.op.word(),
                f.op.word()
            )),
            Some(f) if *f != s => out.push(format!(
                "`{}`: its property changes differ from the saved plan",
                s.name
            )),
            Some(_) => {}
        }
    }
    for f in fresh.iter().filter(|f| !saved_by.contains_key(&key(f))) {
        out.push(format!(
            "`{}`: the program now would {} it; the saved plan would not",
            f.name,
            f.op.word()
        ));
    }
    out
}
