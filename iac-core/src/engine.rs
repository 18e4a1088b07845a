//! The engine: the one entry point a stack program or CLI calls.
//!
//! It owns the order of operations around the planner and the executor: take the stack lock,
//! load and decrypt state, refuse what must be refused (interrupted operations, a plan made
//! against other state, a saved plan the program no longer matches), run, and compact the
//! state when done. It never talks to a cloud API itself; providers do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::apply::{ApplyOptions, ApplySummary, Executor};
use crate::plan::{
    BaseState, InterruptedOperation, Operation, Plan, PlanErrors, PlanRecord, PropertyDiff, Shown,
    StepRecord,
};
use crate::property::PropertyMap;
use crate::provider::{Providers, ReadRequest};
use crate::secrets::{Cipher, Passphrase, SecretsError};
use crate::stack::{NodeKind, Program};
use crate::state::writer::StateWriter;
use crate::state::{
    Checkpoint, LockInfo, Mutation, PendingKind, ResourceState, StateBackend, StateError, StateLock,
};

/// Engine failures (as opposed to individual step failures, which an [`ApplySummary`] lists).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The plan cannot be made.
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    /// State could not be read, written or locked.
    #[error(transparent)]
    State(#[from] StateError),
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
    /// The plan's operations cannot be ordered.
    #[error("{0}")]
    Ordering(String),
}

/// What a refresh found for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// The resource no longer exists; it was removed from state.
    Deleted,
    /// Its inputs differ from the state: the next apply brings them back to the program.
    Changed {
        /// The differences (inputs and outputs).
        diff: Vec<PropertyDiff>,
    },
    /// Only computed outputs changed (a new public IP after an Elastic IP was attached): the
    /// state now has them; nothing needs repair.
    OutputsChanged {
        /// The differences.
        diff: Vec<PropertyDiff>,
    },
    /// An interrupted create had made the resource; it is now recorded.
    Adopted,
    /// An interrupted create had not made the resource; nothing to record.
    NotCreated,
    /// An interrupted update or delete was settled from what the provider reports.
    Settled,
}

/// One refresh finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftRecord {
    /// The resource.
    pub name: String,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// What was found.
    #[serde(flatten)]
    pub drift: Drift,
}

/// The result of a refresh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshReport {
    /// The stack.
    pub stack: String,
    /// Every resource that differed.
    pub drift: Vec<DriftRecord>,
    /// Resources that matched the state.
    pub unchanged: usize,
    /// Resources whose read failed (left as recorded).
    pub errors: Vec<(String, String)>,
}

/// Plans, applies and refreshes stacks with a set of providers and a state backend.
#[derive(Clone)]
pub struct Engine {
    providers: Providers,
    backend: Arc<dyn StateBackend>,
    passphrase: Option<Passphrase>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    /// The state with secrets opened.
    plain: Option<Checkpoint>,
    /// The state as stored, only when it differs from `plain` (the stack has secrets).
    sealed: Option<Checkpoint>,
    cipher: Option<Cipher>,
}

fn needs_secrets(program: &Program) -> bool {
    program.nodes.iter().any(|n| {
        !n.registration.secret_outputs.is_empty()
            || n.registration.inputs.values().any(|o| o.is_secret())
    }) || program.outputs.values().any(|o| o.is_secret())
}

fn shown_map(values: &PropertyMap, secret: &BTreeSet<String>) -> BTreeMap<String, Shown> {
    values
        .iter()
        .map(|(k, v)| {
            let shown = if secret.contains(k) {
                Shown::Secret
            } else {
                Shown::Value(v.clone())
            };
            (k.clone(), shown)
        })
        .collect()
}

impl Engine {
    /// An engine with these providers, storing state in `backend`.
    pub fn new(providers: Providers, backend: impl StateBackend) -> Self {
        Self {
            providers,
            backend: Arc::new(backend),
            passphrase: None,
        }
    }

    /// Sets the passphrase that encrypts the stacks' secrets.
    pub fn with_passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    async fn load(&self, stack: &str) -> Result<Loaded, EngineError> {
        let backend = Arc::clone(&self.backend);
        let name = stack.to_owned();
        let sealed = tokio::task::spawn_blocking(move || backend.load(&name))
            .await
            .map_err(|e| StateError::ReadInterrupted {
                stack: stack.to_owned(),
                reason: e.to_string(),
            })??;
        let cipher = match sealed.as_ref().and_then(|c| c.encryption.as_ref()) {
            Some(header) => {
                let passphrase =
                    self.passphrase
                        .as_ref()
                        .ok_or_else(|| SecretsError::NoPassphrase {
                            stack: stack.to_owned(),
                        })?;
                Some(Cipher::open(passphrase, header, stack)?)
            }
            None => None,
        };
        // Without secrets the stored state is the plain one: keep a single copy.
        let (plain, sealed) = match (sealed, &cipher) {
            (Some(stored), Some(_)) => {
                let mut plain = stored.clone();
                plain.unseal(cipher.as_ref())?;
                (Some(plain), Some(stored))
            }
            (stored, _) => (stored, None),
        };
        Ok(Loaded {
            plain,
            sealed,
            cipher,
        })
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
        self.require_passphrase(program)?;
        let loaded = self.load(&program.stack).await?;
        Ok(crate::plan::plan(program, loaded.plain.as_ref(), &self.providers).await?)
    }

    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, EngineError> {
        Ok(self.backend.lock(stack, operation)?)
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
        if let Some(state) = &loaded.plain {
            if !state.pending.is_empty() {
                return Err(EngineError::Interrupted {
                    stack: stack.to_owned(),
                    operations: crate::plan::interrupted(state),
                });
            }
        }
        Ok(())
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
        let _lock = self.lock(&program.stack, "apply")?;
        let loaded = self.load(&program.stack).await?;
        Self::check_base(&program.stack, &loaded, &plan.record.base)?;
        self.execute(program, plan, loaded, options).await
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
        let _lock = self.lock(&program.stack, "apply")?;
        let loaded = self.load(&program.stack).await?;
        Self::check_base(&program.stack, &loaded, &saved.base)?;
        let fresh = crate::plan::plan(program, loaded.plain.as_ref(), &self.providers).await?;
        let differences = compare_steps(&saved.steps, &fresh.record.steps);
        if !differences.is_empty() {
            return Err(EngineError::PlanMismatch {
                stack: program.stack.clone(),
                differences,
            });
        }
        self.execute(program, &fresh, loaded, options).await
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
        let (cipher, new_header) = match (loaded.cipher, &self.passphrase) {
            (Some(c), _) => (Some(c), None),
            (None, Some(p)) if needs_secrets(program) => {
                let (c, header) = Cipher::create(p, &program.stack)?;
                (Some(c), Some(header))
            }
            (None, _) => (None, None),
        };
        let writer = StateWriter::start(Arc::clone(&self.backend), sealed);
        if let Some(header) = new_header {
            writer.commit(vec![Mutation::Encryption { header }]).await?;
        }
        let executor = Executor::new(
            program,
            plan,
            &self.providers,
            &writer,
            cipher.as_ref(),
            options.events.as_ref(),
        );
        let walk = executor
            .walk(options.parallelism)
            .await
            .map_err(EngineError::Ordering)?;
        let (outputs, secret_outputs) = executor.stack_outputs(&previous_outputs, &previous_secret);
        if walk.fatal.is_none()
            && (outputs != previous_outputs || secret_outputs != previous_secret)
        {
            let mut sealed = outputs.clone();
            crate::state::transform_map(
                &mut sealed,
                &secret_outputs,
                &program.stack,
                "stack outputs",
                cipher.as_ref(),
                crate::state::Transform::Seal,
            )?;
            writer
                .commit(vec![Mutation::Outputs {
                    outputs: sealed,
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
            duration: started.elapsed(),
            outputs: shown_map(&outputs, &secret_outputs),
        })
    }

    /// Reads every recorded resource through its provider, records drift, removes what is
    /// gone, and resolves operations left by an interrupted run.
    pub async fn refresh(
        &self,
        stack: &str,
        parallelism: usize,
    ) -> Result<RefreshReport, EngineError> {
        let _lock = self.lock(stack, "refresh")?;
        let loaded = self.load(stack).await?;
        let mut report = RefreshReport {
            stack: stack.to_owned(),
            drift: Vec::new(),
            unchanged: 0,
            errors: Vec::new(),
        };
        let Some(plain) = loaded.plain else {
            return Ok(report);
        };
        let sealed = loaded.sealed.unwrap_or_else(|| plain.clone());
        let cipher = loaded.cipher;
        let mut mutations: Vec<Mutation> = Vec::new();
        let seal = |r: &ResourceState| -> Result<ResourceState, SecretsError> {
            let mut sealed = r.clone();
            sealed.seal(stack, cipher.as_ref())?;
            Ok(sealed)
        };

        let reads = plain
            .pending
            .values()
            .map(|p| {
                (
                    p.type_token.clone(),
                    p.name.clone(),
                    p.id.clone(),
                    p.inputs.clone(),
                )
            })
            .chain(
                plain
                    .resources
                    .iter()
                    .filter(|r| r.kind == NodeKind::Resource)
                    .map(|r| {
                        (
                            r.type_token.clone(),
                            r.name.clone(),
                            Some(r.id.clone()),
                            r.inputs.clone(),
                        )
                    }),
            )
            .collect::<Vec<_>>();
        let found: Vec<_> = stream::iter(reads.iter().map(|(ty, name, id, inputs)| async move {
            let provider = self
                .providers
                .get(ty)
                .ok_or_else(|| format!("no provider is registered for type `{ty}`"))?;
            provider
                .read(&ReadRequest {
                    stack,
                    type_token: ty,
                    name,
                    id: id.as_deref(),
                    inputs,
                })
                .await
                .map_err(|e| format!("read failed: {e}"))
        }))
        .buffered(parallelism.max(1))
        .collect()
        .await;

        let (pending_found, resource_found) = found.split_at(plain.pending.len());
        for (p, result) in plain.pending.values().zip(pending_found) {
            let found = match result {
                Ok(found) => found,
                Err(e) => {
                    report.errors.push((p.name.clone(), e.clone()));
                    continue;
                }
            };
            let existing = plain
                .resources
                .iter()
                .find(|r| Some(&r.id) == p.id.as_ref() && r.name == p.name);
            let drift = match (p.kind, found, existing) {
                (PendingKind::Create, Some(f), _) => {
                    let record = ResourceState {
                        name: p.name.clone(),
                        type_token: p.type_token.clone(),
                        kind: NodeKind::Resource,
                        id: f.id.clone(),
                        inputs: f.inputs.clone().unwrap_or_else(|| p.inputs.clone()),
                        outputs: f.outputs.clone(),
                        dependencies: p.dependencies.clone(),
                        secrets: p.secrets.clone(),
                        protect: false,
                        delete_pending: false,
                    };
                    mutations.push(Mutation::Put {
                        resource: seal(&record)?,
                        end: Some(p.op_id),
                    });
                    Drift::Adopted
                }
                (PendingKind::Create, None, _) => {
                    mutations.push(Mutation::End { op: p.op_id });
                    Drift::NotCreated
                }
                (_, None, Some(r)) => {
                    mutations.push(Mutation::Remove {
                        name: r.name.clone(),
                        id: r.id.clone(),
                        end: Some(p.op_id),
                    });
                    Drift::Deleted
                }
                (_, Some(f), Some(r)) => {
                    let mut record = r.clone();
                    if let Some(inputs) = &f.inputs {
                        record.inputs = inputs.clone();
                    }
                    record.outputs = f.outputs.clone();
                    mutations.push(Mutation::Put {
                        resource: seal(&record)?,
                        end: Some(p.op_id),
                    });
                    Drift::Settled
                }
                (_, _, None) => {
                    mutations.push(Mutation::End { op: p.op_id });
                    Drift::Settled
                }
            };
            report.drift.push(DriftRecord {
                name: p.name.clone(),
                type_token: p.type_token.clone(),
                drift,
            });
        }

        let resources = plain
            .resources
            .iter()
            .filter(|r| r.kind == NodeKind::Resource);
        for (r, result) in resources.zip(resource_found) {
            match result {
                Err(e) => report.errors.push((r.name.clone(), e.clone())),
                Ok(None) => {
                    mutations.push(Mutation::Remove {
                        name: r.name.clone(),
                        id: r.id.clone(),
                        end: None,
                    });
                    report.drift.push(DriftRecord {
                        name: r.name.clone(),
                        type_token: r.type_token.clone(),
                        drift: Drift::Deleted,
                    });
                }
                Ok(Some(f)) => {
                    let inputs = f.inputs.clone().unwrap_or_else(|| r.inputs.clone());
                    if inputs == r.inputs && f.outputs == r.outputs {
                        report.unchanged += 1;
                        continue;
                    }
                    let diff = drift_diff(r, &inputs, &f.outputs);
                    let drift = if inputs == r.inputs {
                        Drift::OutputsChanged { diff }
                    } else {
                        Drift::Changed { diff }
                    };
                    let mut record = r.clone();
                    record.inputs = inputs;
                    record.outputs = f.outputs.clone();
                    mutations.push(Mutation::Put {
                        resource: seal(&record)?,
                        end: None,
                    });
                    report.drift.push(DriftRecord {
                        name: r.name.clone(),
                        type_token: r.type_token.clone(),
                        drift,
                    });
                }
            }
        }
        if !mutations.is_empty() {
            let writer = StateWriter::start(Arc::clone(&self.backend), sealed);
            writer.commit(mutations).await?;
            writer.finish().await?;
        }
        Ok(report)
    }

    /// The stack's outputs, secrets shown as `[secret]`.
    pub async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, Shown>, EngineError> {
        let loaded = self.load(stack).await?;
        Ok(loaded
            .plain
            .map(|c| shown_map(&c.outputs, &c.secret_outputs))
            .unwrap_or_default())
    }

    /// The stack's state with secrets decrypted (requires the passphrase if it has any).
    pub async fn state(&self, stack: &str) -> Result<Option<Checkpoint>, EngineError> {
        Ok(self.load(stack).await?.plain)
    }

    /// Breaks a stale lock, returning who held it.
    pub fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, EngineError> {
        Ok(self.backend.break_lock(stack)?)
    }
}

fn drift_diff(
    old: &ResourceState,
    inputs: &PropertyMap,
    outputs: &PropertyMap,
) -> Vec<PropertyDiff> {
    let mut diff = Vec::new();
    for (before, after) in [(&old.inputs, inputs), (&old.outputs, outputs)] {
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let (a, b) = (before.get(key), after.get(key));
            if a == b || diff.iter().any(|d: &PropertyDiff| &d.key == key) {
                continue;
            }
            let show = |v: Option<&serde_json::Value>| {
                v.map(|v| {
                    if old.secrets.contains(key) {
                        Shown::Secret
                    } else {
                        Shown::Value(v.clone())
                    }
                })
            };
            diff.push(PropertyDiff {
                key: key.clone(),
                old: show(a),
                new: show(b),
                replace: false,
            });
        }
    }
    diff
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
