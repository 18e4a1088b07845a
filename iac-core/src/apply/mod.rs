//! Apply: execute a plan as a parallel walk of an operation DAG.
//!
//! Each step becomes one or two tasks: *ready* (the new version exists: create, update, read,
//! or nothing for an unchanged resource) and *gone* (the old version is deleted: a delete, or
//! the second half of a replacement). Edges encode the rules: a resource is ready only after
//! its dependencies are; an old version is deleted only after everything that depended on it
//! is gone or points elsewhere; create-before-delete puts *ready* before *gone*,
//! delete-before-create the reverse. Tasks start as soon as their prerequisites finish, at most
//! `parallelism` at a time. A failed task skips exactly what depends on it. Every provider
//! mutation is announced to the state writer (a durable pending operation) before it is made
//! and recorded after.

mod graph;

pub use graph::OrderingError;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::change;
use crate::evaluate::{
    NodeResolver, NodeValue, apply_ignore_changes, data_source_read, dependency_names, evaluate,
    program_record, secret_keys,
};
use crate::gate::{GateAnswer, GatePhase, ProgramGroup};
use crate::output::EvalError;
use crate::plan::{Plan, Step};
use crate::property::{Properties, PropertyMap};
use crate::provider::{CreateRequest, DeleteRequest, Provider, Providers, UpdateRequest};
use crate::record::{Operation, Shown, StepCounts, StepRecord};
use crate::roll;
use crate::stack::{NodeKind, Program};
use crate::state::writer::StateWriter;
use crate::state::{
    Mutation, PendingKind, PendingOperation, ResourceState, StateError, now_rfc3339,
};
use graph::{TaskGates, TaskGraph, TaskKind};

/// How many provider operations run at once unless told otherwise.
pub const DEFAULT_PARALLELISM: usize = 10;

/// Options of one apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// At most this many steps run at once (at least 1).
    pub parallelism: usize,
    /// Progress events, for a live display.
    pub events: Option<UnboundedSender<ApplyEvent>>,
    /// Asks the apply to stop: no new step starts, the steps in flight finish and are
    /// recorded, a rolled member begun is finished (a replacement's second half, and its
    /// gate), the rest are reported skipped (an interrupt, a deadline).
    pub stop: StopSignal,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            parallelism: DEFAULT_PARALLELISM,
            events: None,
            stop: StopSignal::default(),
        }
    }
}

/// A request to stop an apply between steps; clones share it.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Not stopped yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every apply given this signal to stop starting steps.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Progress of an apply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ApplyEvent {
    /// A task started (unchanged steps and data sources that are only forgotten announce
    /// nothing).
    Started {
        /// The resource.
        name: String,
        /// The planned operation.
        op: Operation,
        /// This task deletes the old version of a replaced resource.
        old: bool,
    },
    /// A task that started finished (or any task failed).
    Finished {
        /// The resource.
        name: String,
        /// What was actually done (may be less than planned).
        op: Operation,
        /// This task deleted the old version of a replaced resource.
        old: bool,
        /// The error, if it failed.
        error: Option<String>,
        /// How long it took.
        elapsed: Duration,
    },
    /// A rolling group's gate said "not now" about a member (each new reason once).
    Waiting {
        /// The member.
        name: String,
        /// Asked before the member changes, or after.
        gate: GatePhase,
        /// Why not now.
        reason: String,
    },
    /// A task was skipped because something it depends on failed.
    Skipped {
        /// The resource.
        name: String,
        /// The planned operation.
        op: Operation,
        /// Why it never started.
        blocked_by: SkipReason,
    },
}

/// Why a step never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It needs this resource, whose step failed (or was skipped itself).
    Needs(String),
    /// A stop was asked for (an interrupt).
    Stopped,
    /// The state could not be written, so nothing more starts.
    StateWriter,
}

impl SkipReason {
    /// As the JSON summary has it: the failed resource's name, or what stopped the apply.
    fn word(&self) -> &str {
        match self {
            SkipReason::Needs(name) => name,
            SkipReason::Stopped => "the stop request",
            SkipReason::StateWriter => "the state writer failure",
        }
    }
}

impl fmt::Display for SkipReason {
    /// `needs subnet`, `not started: the stop request`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Needs(name) => write!(f, "needs {name}"),
            other => write!(f, "not started: {}", other.word()),
        }
    }
}

impl Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}

/// A step that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedStep {
    /// The resource.
    pub name: String,
    /// The planned operation.
    pub op: Operation,
    /// What went wrong.
    pub error: String,
}

/// A step that did not run because a dependency failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedStep {
    /// The resource.
    pub name: String,
    /// The planned operation.
    pub op: Operation,
    /// Why it never started.
    pub blocked_by: SkipReason,
}

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplySummary {
    /// The stack.
    pub stack: String,
    /// Steps by what was actually done.
    pub counts: StepCounts,
    /// Every failed step.
    pub failed: Vec<FailedStep>,
    /// Every skipped step.
    pub skipped: Vec<SkippedStep>,
    /// Resources a targeted apply left as they were.
    #[serde(skip_serializing_if = "crate::record::is_zero")]
    pub untargeted: usize,
    /// Wall time.
    #[serde(serialize_with = "serialize_secs")]
    pub duration: Duration,
    /// Stack outputs after the apply.
    pub outputs: BTreeMap<String, Shown>,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `Stack dev: 2 created, 0 updated, 0 replaced, 0 deleted, 5 unchanged, 0 failed, 0 skipped
/// in 3.1s` (after a targeted apply `…, 0 skipped, 40 not targeted in 3.1s`), then a line per
/// failed step (with its error) and per skipped step.
impl fmt::Display for ApplySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stack {}: {}, {} failed, {} skipped",
            self.stack,
            self.counts,
            self.failed.len(),
            self.skipped.len(),
        )?;
        if self.untargeted > 0 {
            write!(f, ", {} not targeted", self.untargeted)?;
        }
        write!(f, " in {}", crate::progress::seconds(self.duration))?;
        for failed in &self.failed {
            write!(f, "\n  failed  {}: {}", failed.name, failed.error)?;
        }
        for skipped in &self.skipped {
            write!(f, "\n  skipped {} ({})", skipped.name, skipped.blocked_by)?;
        }
        Ok(())
    }
}

impl ApplySummary {
    /// Whether every step succeeded.
    pub fn is_success(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// Why a gate cannot be asked yet: what it reads is not known, or cannot be evaluated.
#[derive(Debug, thiserror::Error)]
enum GateInputError {
    #[error("what the gate reads is not known yet")]
    Unknown,
    #[error("what the gate reads cannot be evaluated: {0}")]
    Eval(EvalError),
}

enum TaskError {
    Step(String),
    State(StateError),
    /// A stop was asked for before the task touched anything: reported as skipped.
    Stopped,
}

impl From<StateError> for TaskError {
    fn from(e: StateError) -> Self {
        Self::State(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Executor<'a> {
    pub(crate) program: &'a Program,
    pub(crate) plan: &'a Plan,
    pub(crate) providers: &'a Providers,
    pub(crate) writer: &'a StateWriter,
    pub(crate) events: Option<&'a UnboundedSender<ApplyEvent>>,
    pub(crate) values: Mutex<Vec<NodeValue>>,
    pub(crate) cancelled_deletes: Mutex<BTreeSet<usize>>,
    pub(crate) stopping: AtomicBool,
    pub(crate) stop: StopSignal,
}

/// The outcome of the walk: counts, failures, skips.
pub(crate) struct WalkResult {
    pub(crate) counts: StepCounts,
    pub(crate) failed: Vec<FailedStep>,
    pub(crate) skipped: Vec<SkippedStep>,
    pub(crate) fatal: Option<StateError>,
}

/// Where a walk of the task graph stands.
struct Walk<'g> {
    graph: &'g TaskGraph,
    /// How many tasks each task still waits for.
    waiting: Vec<usize>,
    started: Vec<bool>,
    /// The failed resource a task waits for, once it must be skipped.
    skipped_by: Vec<Option<String>>,
    ready: VecDeque<usize>,
    /// The ends of the rolled members begun: after a stop, they and what they wait for
    /// still run.
    owed: BTreeSet<usize>,
    result: WalkResult,
}

impl<'g> Walk<'g> {
    fn new(graph: &'g TaskGraph) -> Self {
        let n = graph.tasks.len();
        Self {
            graph,
            waiting: graph.prereq_count.clone(),
            started: vec![false; n],
            skipped_by: vec![None; n],
            ready: (0..n).filter(|&t| graph.prereq_count[t] == 0).collect(),
            owed: BTreeSet::new(),
            result: WalkResult {
                counts: StepCounts::default(),
                failed: Vec::new(),
                skipped: Vec::new(),
                fatal: None,
            },
        }
    }

    /// The next task ready to start (marked started), skipping those that must be skipped;
    /// after a stop, only one that finishes a rolled member begun.
    fn next_ready(&mut self, stopped: bool) -> Option<usize> {
        if !stopped {
            while let Some(t) = self.ready.pop_front() {
                if self.skipped_by[t].is_none() {
                    return Some(self.start(t));
                }
            }
            return None;
        }
        let owed = self.owed_tasks();
        let skipped_by = &self.skipped_by;
        self.ready.retain(|&t| skipped_by[t].is_none());
        let at = self.ready.iter().position(|t| owed.contains(t))?;
        let t = self.ready.remove(at)?;
        Some(self.start(t))
    }

    /// Marks `t` started; when it begins a rolled member, the member's end is owed.
    fn start(&mut self, t: usize) -> usize {
        self.started[t] = true;
        if let Some(&end) = self.graph.member_ends.get(&t) {
            self.owed.insert(end);
        }
        t
    }

    /// The ends of the members begun that have not started, and every task they wait for
    /// that has not started.
    fn owed_tasks(&self) -> BTreeSet<usize> {
        let mut owed = BTreeSet::new();
        let mut stack: Vec<usize> = self.owed.iter().copied().collect();
        while let Some(t) = stack.pop() {
            if !self.started[t] && owed.insert(t) {
                stack.extend(self.graph.prereqs[t].iter().copied());
            }
        }
        owed
    }

    /// A member's beginning that was stopped before it touched anything: nothing is owed.
    fn not_begun(&mut self, t: usize) {
        self.started[t] = false;
        if let Some(end) = self.graph.member_ends.get(&t) {
            self.owed.remove(end);
        }
    }
}

/// A change of a resource decided at apply time.
enum Decision {
    Same,
    Update(PropertyMap),
    Replace,
}

impl<'a> Executor<'a> {
    pub(crate) fn new(
        program: &'a Program,
        plan: &'a Plan,
        providers: &'a Providers,
        writer: &'a StateWriter,
        events: Option<&'a UnboundedSender<ApplyEvent>>,
        stop: StopSignal,
    ) -> Self {
        Self {
            program,
            plan,
            providers,
            writer,
            events,
            values: Mutex::new(plan.values.clone()),
            cancelled_deletes: Mutex::new(BTreeSet::new()),
            stopping: AtomicBool::new(false),
            stop,
        }
    }

    fn emit(&self, event: ApplyEvent) {
        if let Some(tx) = self.events {
            let _ = tx.send(event);
        }
    }

    /// Runs the plan's tasks, at most `parallelism` at once, each once what it waits for is
    /// done; a failed task's dependents are skipped, and a failed state write stops the walk.
    pub(crate) async fn walk(&self, parallelism: usize) -> Result<WalkResult, OrderingError> {
        let rolls = roll::orders(self.program, &self.plan.record.steps, |group| {
            self.gate_input(group).unwrap_or_default()
        })
        .await;
        let graph = TaskGraph::build(self.plan, self.program, &rolls)?;
        let mut walk = Walk::new(&graph);
        let mut running = FuturesUnordered::new();
        loop {
            while walk.result.fatal.is_none() && running.len() < parallelism.max(1) {
                let Some(t) = walk.next_ready(self.stop.is_stopped()) else {
                    break;
                };
                let (s, kind) = graph.tasks[t];
                let gates = graph.gates.get(&t).copied();
                running.push(async move {
                    let start = Instant::now();
                    let outcome = self.run_gated(s, kind, gates).await;
                    (t, outcome, start.elapsed())
                });
            }
            let Some((t, outcome, elapsed)) = running.next().await else {
                break;
            };
            match outcome {
                Ok(op) => self.succeeded(&mut walk, t, op, elapsed),
                // Stopped before it touched anything: skipped, as never started.
                Err(TaskError::Stopped) => walk.not_begun(t),
                Err(error) => self.failed(&mut walk, t, error, elapsed),
            }
        }
        self.report_skipped(&mut walk);
        Ok(walk.result)
    }

    /// A task done: its end reported, its operation counted, its dependents readied.
    fn succeeded(&self, walk: &mut Walk<'_>, t: usize, op: Operation, elapsed: Duration) {
        let (rec, old) = self.task_step(walk.graph, t);
        // Only steps that announced a start report their end.
        if rec.op != Operation::Same && !rec.forgets_a_data_source() {
            self.emit(ApplyEvent::Finished {
                name: rec.name.clone(),
                op,
                old,
                error: None,
                elapsed,
            });
        }
        if !old {
            walk.result.counts.add(op);
        }
        for &d in &walk.graph.dependents[t] {
            walk.waiting[d] -= 1;
            if walk.waiting[d] == 0 {
                walk.ready.push_back(d);
            }
        }
    }

    /// A task failed: reported, and every task that waits for it (directly or not) skipped;
    /// a state write that failed stops the walk.
    fn failed(&self, walk: &mut Walk<'_>, t: usize, error: TaskError, elapsed: Duration) {
        let (rec, old) = self.task_step(walk.graph, t);
        let message = match error {
            TaskError::Step(m) => m,
            TaskError::State(e) => {
                let m = e.to_string();
                walk.result.fatal = Some(e);
                self.stopping.store(true, Ordering::SeqCst);
                m
            }
            TaskError::Stopped => return,
        };
        self.emit(ApplyEvent::Finished {
            name: rec.name.clone(),
            op: rec.op,
            old,
            error: Some(message.clone()),
            elapsed,
        });
        walk.result.failed.push(FailedStep {
            name: rec.name.clone(),
            op: rec.op,
            error: message,
        });
        let mut stack = walk.graph.dependents[t].clone();
        while let Some(d) = stack.pop() {
            if walk.skipped_by[d].is_none() && !walk.started[d] {
                walk.skipped_by[d] = Some(rec.name.clone());
                stack.extend(walk.graph.dependents[d].iter().copied());
            }
        }
    }

    /// Reports, once per step, every task that never started.
    fn report_skipped(&self, walk: &mut Walk<'_>) {
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for (t, &(s, _)) in walk.graph.tasks.iter().enumerate() {
            if walk.started[t] || !reported.insert(s) {
                continue;
            }
            let rec = &self.plan.record.steps[s];
            let blocked_by = match walk.skipped_by[t].clone() {
                Some(name) => SkipReason::Needs(name),
                None if walk.result.fatal.is_some() => SkipReason::StateWriter,
                None => SkipReason::Stopped,
            };
            self.emit(ApplyEvent::Skipped {
                name: rec.name.clone(),
                op: rec.op,
                blocked_by: blocked_by.clone(),
            });
            walk.result.skipped.push(SkippedStep {
                name: rec.name.clone(),
                op: rec.op,
                blocked_by,
            });
        }
    }

    /// Task `t`'s step record, and whether the task deletes a replaced resource's old copy.
    fn task_step(&self, graph: &TaskGraph, t: usize) -> (&StepRecord, bool) {
        let (s, kind) = graph.tasks[t];
        let rec = &self.plan.record.steps[s];
        (rec, kind == TaskKind::Gone && rec.op == Operation::Replace)
    }

    /// A task, with its rolling group's gate asked before it begins a member and after it
    /// ends one.
    async fn run_gated(
        &self,
        s: usize,
        kind: TaskKind,
        gates: Option<TaskGates>,
    ) -> Result<Operation, TaskError> {
        let Some(gates) = gates else {
            return self.run(s, kind).await;
        };
        let group = &self.program.groups[gates.group];
        let member = &self.plan.record.steps[gates.member].name;
        if gates.before {
            self.pass(group, GatePhase::Before, member).await?;
        }
        let done = self.run(s, kind).await?;
        if gates.after {
            self.pass(group, GatePhase::After, member)
                .await
                .map_err(|e| match e {
                    TaskError::Step(m) => {
                        TaskError::Step(format!("the {} is done, but {m}", done.word()))
                    }
                    other => other,
                })?;
        }
        Ok(done)
    }

    /// Asks `group`'s gate about `member` until it passes or the group's timeout runs out;
    /// each new reason to wait is an event. A stop asked for while waiting to begin a
    /// member leaves it untouched.
    async fn pass(
        &self,
        group: &ProgramGroup,
        phase: GatePhase,
        member: &str,
    ) -> Result<(), TaskError> {
        let deadline = Instant::now() + group.timeout;
        let mut last: Option<String> = None;
        loop {
            let answer = match self.gate_input(group) {
                Ok(input) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let asked = group.gate.ask(phase, member, &input);
                    tokio::time::timeout(left.max(group.interval), asked)
                        .await
                        .unwrap_or_else(|_| GateAnswer::Wait("the gate did not answer".to_owned()))
                }
                Err(why) => GateAnswer::Wait(why.to_string()),
            };
            let GateAnswer::Wait(why) = answer else {
                return Ok(());
            };
            if last.as_deref() != Some(why.as_str()) {
                self.emit(ApplyEvent::Waiting {
                    name: member.to_owned(),
                    gate: phase,
                    reason: why.clone(),
                });
            }
            if phase == GatePhase::Before && self.stop.is_stopped() {
                return Err(TaskError::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(TaskError::Step(format!(
                    "the gate of rolling group `{}` did not pass {} {member} within {}: {why}",
                    group.name,
                    phase.word(),
                    humantime::format_duration(group.timeout),
                )));
            }
            last = Some(why);
            tokio::time::sleep(group.interval.min(deadline - now)).await;
        }
    }

    /// The group's gate input as resolved now.
    fn gate_input(&self, group: &ProgramGroup) -> Result<Value, GateInputError> {
        let values = lock(&self.values);
        let resolver = NodeResolver {
            program: self.program,
            values: &values,
            sketch: false,
        };
        match group.input.resolve(&resolver) {
            Ok(Some(input)) => Ok(input),
            Ok(None) => Err(GateInputError::Unknown),
            Err(e) => Err(GateInputError::Eval(e)),
        }
    }

    async fn run(&self, s: usize, kind: TaskKind) -> Result<Operation, TaskError> {
        let step = &self.plan.steps[s];
        let rec = &self.plan.record.steps[s];
        if self.stopping.load(Ordering::SeqCst) {
            return Err(TaskError::Step(
                "not started: the state could not be written".to_owned(),
            ));
        }
        let op = rec.op;
        if op != Operation::Same && !rec.forgets_a_data_source() {
            self.emit(ApplyEvent::Started {
                name: rec.name.clone(),
                op,
                old: kind == TaskKind::Gone && op == Operation::Replace,
            });
        }
        match (kind, op, step.node) {
            (TaskKind::Gone, _, _) => self.gone(s, step).await,
            (TaskKind::Ready, Operation::Same, Some(n)) => {
                if step.refresh_record
                    && let Some(old) = &step.old
                {
                    let record =
                        self.record_for(n, old.id.clone(), old.inputs.clone(), old.outputs.clone());
                    self.put(record, None)?;
                }
                Ok(Operation::Same)
            }
            (TaskKind::Ready, Operation::Read, Some(n)) => self.read_data(n, step).await,
            (TaskKind::Ready, Operation::Create, Some(n)) => self.create(n).await,
            (TaskKind::Ready, Operation::Update, Some(n)) => {
                self.update_in_place(n, step, false).await
            }
            (TaskKind::Ready, Operation::Replace, Some(n)) => {
                let cancelled = lock(&self.cancelled_deletes).contains(&s);
                if cancelled {
                    self.update_in_place(n, step, false).await
                } else if rec.delete_before_replace {
                    self.create(n).await.map(|_| Operation::Replace)
                } else {
                    match self.update_in_place(n, step, true).await? {
                        Operation::Replace => self.create(n).await.map(|_| Operation::Replace),
                        done => {
                            lock(&self.cancelled_deletes).insert(s);
                            Ok(done)
                        }
                    }
                }
            }
            _ => Err(TaskError::Step(
                "internal: step without a program node".to_owned(),
            )),
        }
    }

    fn provider(&self, type_token: &str) -> Result<&dyn Provider, TaskError> {
        self.providers
            .get(type_token)
            .map(|p| p.as_ref())
            .ok_or_else(|| {
                TaskError::Step(format!("no provider is registered for type `{type_token}`"))
            })
    }

    /// Inputs of node `n` against what is resolved now.
    fn inputs(&self, n: usize) -> Result<Properties, TaskError> {
        let values = lock(&self.values);
        let resolver = NodeResolver {
            program: self.program,
            values: &values,
            sketch: false,
        };
        let reg = &self.program.nodes[n].registration;
        let evaluated = evaluate(reg, &resolver, None)
            .map_err(|(key, e)| TaskError::Step(format!("input `{key}`: {e}")))?;
        Ok(evaluated.inputs)
    }

    fn known_inputs(&self, n: usize) -> Result<PropertyMap, TaskError> {
        let inputs = self.inputs(n)?;
        let unknown: Vec<&String> = inputs
            .iter()
            .filter(|(_, v)| v.known().is_none())
            .map(|(k, _)| k)
            .collect();
        match inputs.to_known() {
            Some(known) => Ok(known),
            None => Err(TaskError::Step(format!(
                "inputs {unknown:?} are still unknown after every dependency was applied"
            ))),
        }
    }

    fn record_for(
        &self,
        n: usize,
        id: String,
        inputs: PropertyMap,
        outputs: PropertyMap,
    ) -> ResourceState {
        program_record(self.program, n, id, inputs, outputs)
    }

    fn put(&self, record: ResourceState, end: Option<u64>) -> Result<(), TaskError> {
        self.writer.send(vec![Mutation::Put {
            resource: record,
            end,
        }])?;
        Ok(())
    }

    /// Durably records `pending` before its provider call; returns its id.
    async fn begin(&self, pending: PendingOperation) -> Result<u64, TaskError> {
        let op_id = pending.op_id;
        self.writer
            .commit(vec![Mutation::Begin { pending }])
            .await?;
        Ok(op_id)
    }

    fn fail<T>(&self, op: u64, message: String) -> Result<T, TaskError> {
        self.writer.send(vec![Mutation::End { op }])?;
        Err(TaskError::Step(message))
    }

    fn set_value(&self, n: usize, id: String, outputs: PropertyMap) {
        lock(&self.values)[n] = NodeValue::Known {
            id,
            outputs: outputs.into(),
        };
    }

    async fn create(&self, n: usize) -> Result<Operation, TaskError> {
        let reg = &self.program.nodes[n].registration;
        let provider = self.provider(&reg.type_token)?;
        let inputs = self.known_inputs(n)?;
        let announced = self.record_for(n, String::new(), inputs.clone(), PropertyMap::new());
        let op = self
            .begin(pending_operation(PendingKind::Create, announced))
            .await?;
        let token = format!("iac-{op:016x}");
        let request = CreateRequest {
            stack: &self.program.stack,
            type_token: &reg.type_token,
            name: &reg.name,
            inputs: &inputs,
            idempotency_token: &token,
        };
        match provider.create(&request).await {
            Ok(created) => {
                let record =
                    self.record_for(n, created.id.clone(), inputs, created.outputs.clone());
                self.put(record, Some(op))?;
                self.set_value(n, created.id, created.outputs);
                Ok(Operation::Create)
            }
            Err(e) if e.refused => self.fail(op, format!("create failed: {e}")),
            // It may exist: the pending operation stays, so that the next run looks for it
            // before anything is created again.
            Err(e) => Err(TaskError::Step(format!(
                "create failed: {e} (it may have been made: the next apply or refresh looks for it first)"
            ))),
        }
    }

    /// Decides the change of node `n` from its recorded state now that inputs are known
    /// (the classifier the planner used; an update whose inputs are still unknown replaces).
    fn decide(
        &self,
        n: usize,
        old: &ResourceState,
        inputs: &Properties,
    ) -> Result<Decision, TaskError> {
        let reg = &self.program.nodes[n].registration;
        let provider = self.provider(&reg.type_token)?;
        let forced = self.plan.record.replace.contains(&*reg.name);
        let change = change::classify(provider, reg, old, inputs, forced)
            .map_err(|e| TaskError::Step(format!("diff failed: {e}")))?;
        Ok(match change.operation() {
            Operation::Same => Decision::Same,
            Operation::Update => inputs
                .to_known()
                .map_or(Decision::Replace, Decision::Update),
            _ => Decision::Replace,
        })
    }

    /// Updates node `n` in place if its inputs still differ. `Ok(Replace)` is returned, with
    /// nothing done, when the change needs replacement and `may_replace` is set.
    async fn update_in_place(
        &self,
        n: usize,
        step: &Step,
        may_replace: bool,
    ) -> Result<Operation, TaskError> {
        let Some(old) = &step.old else {
            return self.create(n).await;
        };
        let reg = &self.program.nodes[n].registration;
        let mut inputs = self.inputs(n)?;
        apply_ignore_changes(&mut inputs, &reg.options.ignore_changes, &old.inputs);
        match self.decide(n, old, &inputs)? {
            Decision::Same => {
                self.set_value(n, old.id.clone(), old.outputs.clone());
                if change::record_is_stale(
                    old,
                    reg,
                    &dependency_names(self.program, n),
                    &secret_keys(reg),
                ) {
                    let record = self.record_for(n, old.id.clone(), old.inputs.clone(), old.outputs.clone());
                    self.put(record, None)?;
                }
                Ok(Operation::Same)
            }
            Decision::Replace if may_replace => Ok(Operation::Replace),
            Decision::Replace => Err(TaskError::Step(
                "the change now needs replacement, which the plan did not include: run preview again".to_owned(),
            )),
            Decision::Update(new_inputs) => {
                let provider = self.provider(&reg.type_token)?;
                let announced = self.record_for(n, old.id.clone(), new_inputs.clone(), PropertyMap::new());
                let op = self
                    .begin(pending_operation(PendingKind::Update, announced))
                    .await?;
                let request = UpdateRequest {
                    stack: &self.program.stack,
                    type_token: &reg.type_token,
                    name: &reg.name,
                    id: &old.id,
                    old_inputs: &old.inputs,
                    old_outputs: &old.outputs,
                    new_inputs: &new_inputs,
                };
                match provider.update(&request).await {
                    Ok(outputs) => {
                        let record = self.record_for(n, old.id.clone(), new_inputs, outputs.clone());
                        self.put(record, Some(op))?;
                        self.set_value(n, old.id.clone(), outputs);
                        Ok(Operation::Update)
                    }
                    Err(e) => self.fail(op, format!("update failed: {e}")),
                }
            }
        }
    }

    async fn read_data(&self, n: usize, step: &Step) -> Result<Operation, TaskError> {
        let reg = &self.program.nodes[n].registration;
        let known = matches!(lock(&self.values)[n], NodeValue::Known { .. });
        let (id, outputs) = if known {
            match &lock(&self.values)[n] {
                NodeValue::Known { id, outputs } => (id.clone(), outputs.to_map()),
                _ => {
                    return Err(TaskError::Step(
                        "internal: data source value vanished".to_owned(),
                    ));
                }
            }
        } else {
            let provider = self.provider(&reg.type_token)?;
            let inputs = self.known_inputs(n)?;
            let request = data_source_read(&self.program.stack, reg, &inputs);
            match provider.read(&request).await {
                Ok(Some(found)) => (found.id, found.outputs),
                Ok(None) => {
                    return Err(TaskError::Step(
                        "the data source matched nothing".to_owned(),
                    ));
                }
                Err(e) => return Err(TaskError::Step(format!("read failed: {e}"))),
            }
        };
        let inputs = self.known_inputs(n)?;
        let unchanged = step
            .old
            .as_ref()
            .is_some_and(|o| o.id == id && o.outputs == outputs && o.inputs == inputs);
        if !unchanged {
            let record = self.record_for(n, id.clone(), inputs, outputs.clone());
            self.put(record, None)?;
        }
        self.set_value(n, id, outputs);
        Ok(Operation::Read)
    }

    async fn gone(&self, s: usize, step: &Step) -> Result<Operation, TaskError> {
        if lock(&self.cancelled_deletes).contains(&s) {
            return Ok(Operation::Same);
        }
        let Some(old) = &step.old else {
            return Err(TaskError::Step(
                "internal: delete without a record".to_owned(),
            ));
        };
        let rec = &self.plan.record.steps[s];
        if rec.op == Operation::Replace
            && rec.delete_before_replace
            && let Some(n) = step.node
        {
            let reg = &self.program.nodes[n].registration;
            let mut inputs = self.inputs(n)?;
            apply_ignore_changes(&mut inputs, &reg.options.ignore_changes, &old.inputs);
            if !matches!(self.decide(n, old, &inputs)?, Decision::Replace) {
                lock(&self.cancelled_deletes).insert(s);
                return Ok(Operation::Same);
            }
        }
        // A provider that adopts what has the same natural key may answer a replacement's
        // create with the old object itself: deleting that would delete the replacement.
        if rec.op == Operation::Replace
            && !rec.delete_before_replace
            && let Some(n) = step.node
            && matches!(&lock(&self.values)[n], NodeValue::Known { id, .. } if *id == old.id)
        {
            return Ok(Operation::Same);
        }
        if old.kind == NodeKind::DataSource {
            self.writer.send(vec![Mutation::Remove {
                name: old.name.clone(),
                id: old.id.clone(),
                end: None,
            }])?;
            // Forgotten, not deleted: nothing existed to delete.
            return Ok(Operation::Read);
        }
        let provider = self.provider(&old.type_token)?;
        let op = self
            .begin(pending_operation(PendingKind::Delete, old.clone()))
            .await?;
        let request = DeleteRequest {
            stack: &self.program.stack,
            type_token: &old.type_token,
            name: &old.name,
            id: &old.id,
            inputs: &old.inputs,
            outputs: &old.outputs,
        };
        match provider.delete(&request).await {
            Ok(()) => {
                self.writer.send(vec![Mutation::Remove {
                    name: old.name.clone(),
                    id: old.id.clone(),
                    end: Some(op),
                }])?;
                Ok(Operation::Delete)
            }
            Err(e) => self.fail(op, format!("delete failed: {e}")),
        }
    }

    /// Evaluates the stack outputs; those still unknown (after failures) keep their old value.
    /// Outputs the program no longer has are dropped only after a run that `completed`: a
    /// destroy whose deletes failed keeps the outputs of what still exists.
    pub(crate) fn stack_outputs(
        &self,
        previous: &PropertyMap,
        previous_secret: &BTreeSet<String>,
        completed: bool,
    ) -> (PropertyMap, BTreeSet<String>) {
        let values = lock(&self.values);
        let resolver = NodeResolver {
            program: self.program,
            values: &values,
            sketch: false,
        };
        let mut outputs = PropertyMap::new();
        let mut secret = BTreeSet::new();
        for (key, output) in &self.program.outputs {
            let (value, is_secret) = match output.resolve(&resolver) {
                Ok(Some(v)) => (Some(v), output.is_secret()),
                _ => (previous.get(key).cloned(), previous_secret.contains(key)),
            };
            if let Some(v) = value {
                outputs.insert(key.clone(), v);
                if is_secret {
                    secret.insert(key.clone());
                }
            }
        }
        if !completed {
            for (key, value) in previous {
                if !self.program.outputs.contains_key(key) {
                    outputs.insert(key.clone(), value.clone());
                    if previous_secret.contains(key) {
                        secret.insert(key.clone());
                    }
                }
            }
        }
        (outputs, secret)
    }
}

/// The pending operation announcing `kind` of the resource `record` describes.
fn pending_operation(kind: PendingKind, record: ResourceState) -> PendingOperation {
    PendingOperation {
        op_id: rand::random(),
        kind,
        id: (kind != PendingKind::Create).then_some(record.id),
        name: record.name,
        type_token: record.type_token,
        inputs: record.inputs,
        secrets: record.secrets,
        dependencies: record.dependencies,
        started: now_rfc3339(),
    }
}
