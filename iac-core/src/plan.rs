//! Planning: diff the program against the stack's recorded state.
//!
//! The planner walks the program in topological order, evaluates each resource's inputs
//! against what is known at preview time (state outputs of unchanged resources, data sources
//! read now; everything else "known after apply"), asks the provider to `check` and `diff`,
//! and produces a [`Plan`]: one [`Step`] per resource with a per-property diff. The plan's
//! serialisable part ([`PlanRecord`]) never contains a secret value. Apply re-evaluates inputs
//! as outputs become known and may only do less than the plan said, never more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::change;
use crate::errors::ErrorList;
use crate::output::{EvalError, Resolve, ResourceRef};
use crate::property::{Properties, PropertyMap, PropertyValue};
use crate::provider::{
    CheckRequest, InputReference, Provider, ProviderError, Providers, ReadRequest,
};
use crate::roll::RollRecord;
use crate::stack::{NodeKind, Program, Registration};
use crate::state::{Checkpoint, PendingKind, ResourceState};
use crate::target::{self, Targets};

/// The format version of saved plans.
pub const PLAN_VERSION: u32 = 1;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Nothing changes.
    Same,
    /// A new resource.
    Create,
    /// Changed in place.
    Update,
    /// A new resource replaces the old one.
    Replace,
    /// Removed.
    Delete,
    /// A data source is read.
    Read,
}

impl Operation {
    /// The preview symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Same => " ",
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "+-",
            Self::Delete => "-",
            Self::Read => ">",
        }
    }

    /// The lower-case word.
    pub fn word(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Create => "create",
            Self::Update => "update",
            Self::Replace => "replace",
            Self::Delete => "delete",
            Self::Read => "read",
        }
    }
}

/// A value as a plan shows it: never a secret in plaintext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// A plain value.
    Value(Value),
    /// A secret value.
    Secret,
    /// Known only after apply.
    Unknown,
}

impl Shown {
    /// Each of `values` as shown: `[secret]` for the keys in `secret`.
    pub fn map(values: &PropertyMap, secret: &BTreeSet<String>) -> BTreeMap<String, Shown> {
        values
            .iter()
            .map(|(key, value)| {
                let shown = if secret.contains(key) {
                    Shown::Secret
                } else {
                    Shown::Value(value.clone())
                };
                (key.clone(), shown)
            })
            .collect()
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::Secret => f.write_str("[secret]"),
            Self::Unknown => f.write_str("(known after apply)"),
        }
    }
}

/// One property's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDiff {
    /// The input property.
    pub key: String,
    /// The recorded value (absent when added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Shown>,
    /// The planned value (absent when removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Shown>,
    /// Whether this change forces replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
    /// When the planned value is known only after apply: the value as far as it is known
    /// now, each unknown part written [`SKETCH_MARK`] (a rendered file with its new lines).
    /// Never for a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sketch: Option<Value>,
}

/// What stands for a part of a [`PropertyDiff::sketch`] that is known only after apply.
pub const SKETCH_MARK: &str = "(known after apply)";

/// One planned step, as saved and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The resource's name.
    pub name: String,
    /// The resource's type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// What happens.
    pub op: Operation,
    /// For a replacement: the old resource is deleted first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_before_replace: bool,
    /// Property changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<PropertyDiff>,
    /// A data source: its record is only forgotten when it leaves the program (no delete
    /// is shown or counted for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_source: bool,
}

impl StepRecord {
    /// A data source leaving the program: nothing exists to delete.
    pub fn forgets_a_data_source(&self) -> bool {
        self.data_source && self.op == Operation::Delete
    }
}

/// Which state a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseState {
    /// The stack's lineage (absent for a stack never applied).
    pub lineage: Option<String>,
    /// The state serial.
    pub serial: u64,
}

impl BaseState {
    pub(crate) fn of(checkpoint: Option<&Checkpoint>) -> Self {
        Self {
            lineage: checkpoint.map(|c| c.lineage.clone()),
            serial: checkpoint.map_or(0, |c| c.serial),
        }
    }
}

/// An operation from an interrupted run, as a plan reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptedOperation {
    /// What was being done.
    pub kind: PendingKind,
    /// The resource.
    pub name: String,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// When it started.
    pub started: String,
}

impl fmt::Display for InterruptedOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PendingKind::Create => "create",
            PendingKind::Update => "update",
            PendingKind::Delete => "delete",
        };
        write!(
            f,
            "{kind} of `{}` ({}) started {}",
            self.name, self.type_token, self.started
        )
    }
}

/// The serialisable plan: what a saved plan file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Format version.
    pub version: u32,
    /// The stack.
    pub stack: String,
    /// The state it was made against.
    pub base: BaseState,
    /// Every step, dependencies first, deletes last.
    pub steps: Vec<StepRecord>,
    /// Operations from an interrupted run that must be resolved (refresh) before apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<InterruptedOperation>,
    /// The resources whose replacement was asked for ([`PlanOptions::replace`]); applying
    /// the saved plan replaces them again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub replace: BTreeSet<String>,
    /// The resources a targeted plan covers ([`PlanOptions::targets`]); applying the saved
    /// plan covers them again.
    #[serde(default, skip_serializing_if = "Targets::is_all")]
    pub targets: Targets,
    /// How many resources (in the program or recorded; data sources aside) a targeted plan
    /// leaves untouched.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untargeted: usize,
    /// Recorded resources moved to a new name (an alias in the program), before any step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Move>,
    /// The rolling groups whose members the steps update or replace: they change one at a
    /// time, each behind the group's gate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolls: Vec<RollRecord>,
}

/// A recorded resource moved to the name the program now gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The recorded name (an alias of the resource).
    pub from: String,
    /// The name in the program.
    pub to: String,
    /// The resource's type token.
    #[serde(rename = "type")]
    pub type_token: String,
}

/// Whether a count is zero (what serde skips).
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// How to plan beyond what the program says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Replace these resources even if nothing of theirs changed; what depends on them
    /// follows their new outputs. With no other change forcing it, the old one is deleted
    /// first: the new one has the same inputs, so whatever must be unique (a name, a rule's
    /// permission) would clash. Each must be in the program and recorded.
    pub replace: BTreeSet<String>,
    /// Plan only these resources and what they need (every one when none is named); the
    /// rest are left as recorded and counted as untargeted. A targeted replacement or delete
    /// whose recorded dependents are not covered is refused (cover them with
    /// [`Targets::dependents`]).
    pub targets: Targets,
}

/// How many steps of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepCounts {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes.
    pub delete: usize,
    /// Unchanged resources.
    pub same: usize,
    /// Data source reads.
    pub read: usize,
}

impl StepCounts {
    /// Counts one more step of `op`.
    pub fn add(&mut self, op: Operation) {
        match op {
            Operation::Create => self.create += 1,
            Operation::Update => self.update += 1,
            Operation::Replace => self.replace += 1,
            Operation::Delete => self.delete += 1,
            Operation::Same => self.same += 1,
            Operation::Read => self.read += 1,
        }
    }
}

/// `3 created, 1 updated, 0 replaced, 0 deleted, 36 unchanged` (data source reads are not
/// changes and are left out).
impl fmt::Display for StepCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} replaced, {} deleted, {} unchanged",
            self.create, self.update, self.replace, self.delete, self.same
        )
    }
}

impl PlanRecord {
    /// Counts steps by operation.
    pub fn counts(&self) -> StepCounts {
        let mut c = StepCounts::default();
        for s in self.steps.iter().filter(|s| !s.forgets_a_data_source()) {
            c.add(s.op);
        }
        c
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        !self.moves.is_empty()
            || self.steps.iter().any(|s| {
                !matches!(s.op, Operation::Same | Operation::Read) && !s.forgets_a_data_source()
            })
    }

    /// The plan as JSON (for `--plan-out`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A saved plan; a wrong format version is an error.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let record: Self =
            serde_json::from_str(text).map_err(|e| format!("not a plan file: {e}"))?;
        if record.version != PLAN_VERSION {
            return Err(format!(
                "plan format version {} is not supported (this version writes {PLAN_VERSION}): make the plan again",
                record.version
            ));
        }
        Ok(record)
    }
}

/// Resolution state of one program node's outputs.
#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Known {
        id: String,
        outputs: PropertyMap,
    },
    Partial {
        id: String,
        outputs: PropertyMap,
        unknown: BTreeSet<String>,
    },
    Unknown,
}

/// Resolves references against per-node values.
pub(crate) struct NodeResolver<'a> {
    pub(crate) program: &'a Program,
    pub(crate) values: &'a [NodeValue],
    /// Answer [`SKETCH_MARK`] for what is not known yet, instead of "unknown".
    pub(crate) sketch: bool,
}

impl Resolve for NodeResolver<'_> {
    fn property(&self, resource: &ResourceRef, property: &str) -> Result<Option<Value>, EvalError> {
        let Some(&i) = self.program.index.get(resource.name()) else {
            return Ok(None);
        };
        let not_yet = || Ok(self.sketch.then(|| Value::String(SKETCH_MARK.to_owned())));
        let (id, outputs) = match &self.values[i] {
            NodeValue::Unknown => return not_yet(),
            NodeValue::Partial { unknown, .. } if unknown.contains(property) => return not_yet(),
            NodeValue::Known { id, outputs } | NodeValue::Partial { id, outputs, .. } => {
                (id, outputs)
            }
        };
        if property == "id" {
            return Ok(Some(Value::String(id.clone())));
        }
        let missing = || {
            let (resource, property) = (resource.name().to_owned(), property.to_owned());
            if self.program.nodes[i].registration.type_token == crate::STACK_REFERENCE {
                EvalError::MissingReferenceOutput { resource, property }
            } else {
                EvalError::MissingProperty { resource, property }
            }
        };
        outputs.get(property).cloned().map(Some).ok_or_else(missing)
    }
}

/// A registration's inputs evaluated against what is known.
pub(crate) struct Evaluated {
    pub(crate) inputs: Properties,
    pub(crate) secrets: BTreeSet<String>,
    pub(crate) references: BTreeMap<String, InputReference>,
    /// The unknown, non-secret inputs as far as they are known (with `sketcher`).
    pub(crate) sketches: BTreeMap<String, Value>,
}

/// Whether a sketch shows [`SKETCH_MARK`] somewhere.
fn marked(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(SKETCH_MARK),
        Value::Array(items) => items.iter().any(marked),
        Value::Object(map) => map.values().any(marked),
        _ => false,
    }
}

/// Whether a sketch shows something known: a part that is not the mark alone.
fn informative(value: &Value) -> bool {
    match value {
        Value::String(s) => s != SKETCH_MARK,
        Value::Array(items) => items.iter().any(informative),
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

/// Evaluates a registration's inputs; with `sketcher` (a resolver answering
/// [`SKETCH_MARK`] for what is unknown), also sketches every unknown input that is not secret.
pub(crate) fn evaluate(
    registration: &Registration,
    resolver: &dyn Resolve,
    sketcher: Option<&dyn Resolve>,
) -> Result<Evaluated, (String, EvalError)> {
    let mut inputs = Properties::new();
    let mut sketches = BTreeMap::new();
    for (key, output) in &registration.inputs {
        let value = output.resolve(resolver).map_err(|e| (key.clone(), e))?;
        if value.is_none()
            && !output.is_secret()
            && let Some(sketcher) = sketcher
            // A sketch that cannot be made (a mark where a number must be) is left out, and so
            // is one that says nothing more (marks alone) or hides what is unknown (a number
            // computed from the mark).
            && let Ok(Some(sketch)) = output.resolve(sketcher)
            && informative(&sketch)
            && marked(&sketch)
        {
            sketches.insert(key.clone(), sketch);
        }
        inputs.insert(
            key.clone(),
            value.map_or(PropertyValue::Unknown, PropertyValue::Known),
        );
    }
    let references = registration
        .inputs
        .iter()
        .filter_map(|(key, output)| {
            let origin = output.origin()?;
            Some((
                key.clone(),
                InputReference {
                    resource: origin.resource.to_string(),
                    property: origin.property.to_string(),
                },
            ))
        })
        .collect();
    Ok(Evaluated {
        inputs,
        secrets: secret_keys(registration),
        references,
        sketches,
    })
}

/// The input and output keys of a registration whose values are secret.
pub(crate) fn secret_keys(registration: &Registration) -> BTreeSet<String> {
    registration
        .inputs
        .iter()
        .filter(|(_, o)| o.is_secret())
        .map(|(k, _)| k.clone())
        .chain(registration.secret_outputs.iter().cloned())
        .collect()
}

/// Copies recorded values over inputs whose changes are ignored.
pub(crate) fn apply_ignore_changes(inputs: &mut Properties, ignore: &[String], old: &PropertyMap) {
    for key in ignore {
        match old.get(key) {
            Some(v) => inputs.insert(key.clone(), PropertyValue::Known(v.clone())),
            None => {
                inputs.remove(key);
            }
        }
    }
}

/// The operations an interrupted run left in `state`.
pub(crate) fn interrupted(state: &Checkpoint) -> Vec<InterruptedOperation> {
    state
        .pending
        .values()
        .map(|p| InterruptedOperation {
            kind: p.kind,
            name: p.name.clone(),
            type_token: p.type_token.clone(),
            started: p.started.clone(),
        })
        .collect()
}

/// A problem that makes a plan impossible.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No provider handles the type.
    #[error(
        "resource `{resource}`: no provider is registered for type `{type_token}`: register one for this type token"
    )]
    NoProvider {
        /// The resource.
        resource: String,
        /// The type token.
        type_token: String,
    },
    /// The provider refused an input.
    #[error("resource `{resource}` ({type_token}): {}{reason}", if property.is_empty() { String::new() } else { format!("`{property}`: ") })]
    Check {
        /// The resource.
        resource: String,
        /// Its type token.
        type_token: String,
        /// The input at fault.
        property: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An input could not be evaluated.
    #[error("resource `{resource}`: input `{property}`: {error}")]
    Eval {
        /// The resource.
        resource: String,
        /// The input.
        property: String,
        /// Why.
        error: EvalError,
    },
    /// A protected resource would be deleted or replaced.
    #[error(
        "resource `{resource}` is protected and the plan would {action} it{reason}: remove its `protect` option first, or undo the change"
    )]
    Protected {
        /// The resource.
        resource: String,
        /// `delete` or `replace`.
        action: &'static str,
        /// What forces it.
        reason: String,
    },
    /// A replacement was asked for a resource that cannot be replaced.
    #[error("resource `{resource}` cannot be replaced: {reason}")]
    CannotReplace {
        /// The name given.
        resource: String,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// A target is neither in the program nor recorded.
    #[error(
        "target `{resource}`: the program has no resource of that name and the stack records none"
    )]
    UnknownTarget {
        /// The name given.
        resource: String,
    },
    /// A targeted plan would replace or delete a resource that recorded resources it does
    /// not cover depend on: they would be left pointing at what is gone.
    #[error(
        "resource `{resource}` would be {action}d, but {} depend on it and are not targeted: target them too, or target with dependents",
        dependents.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
    )]
    UntargetedDependents {
        /// The resource.
        resource: String,
        /// `replace` or `delete`.
        action: &'static str,
        /// The recorded dependents not covered.
        dependents: Vec<String>,
    },
    /// The provider failed during planning.
    #[error("resource `{resource}`: provider {action} failed: {error}")]
    Provider {
        /// The resource.
        resource: String,
        /// `diff` or `read`.
        action: &'static str,
        /// The provider's error.
        error: ProviderError,
    },
    /// A data source found nothing.
    #[error("data source `{resource}` ({type_token}) matched nothing: check its filter inputs")]
    DataSourceNotFound {
        /// The data source.
        resource: String,
        /// Its type token.
        type_token: String,
    },
}

impl PlanError {
    /// Whether the program or its configuration must change, as opposed to a provider call
    /// (a read or a diff) having failed.
    pub fn is_user_error(&self) -> bool {
        match self {
            PlanError::NoProvider { .. }
            | PlanError::Check { .. }
            | PlanError::Eval { .. }
            | PlanError::Protected { .. }
            | PlanError::CannotReplace { .. }
            | PlanError::UnknownTarget { .. }
            | PlanError::UntargetedDependents { .. }
            | PlanError::DataSourceNotFound { .. } => true,
            PlanError::Provider { .. } => false,
        }
    }
}

/// Every problem found while planning.
pub type PlanErrors = ErrorList<PlanError>;

/// What apply needs of a step beyond its record (`Plan::record.steps`, same index).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The program node (absent for deletes).
    pub(crate) node: Option<usize>,
    /// The recorded resource this step changes or deletes.
    pub(crate) old: Option<ResourceState>,
    /// For a `Same` step: the record's options or dependencies changed and must be saved.
    pub(crate) refresh_record: bool,
}

/// A step while it is being planned: its record and what apply needs.
#[derive(Debug, Clone)]
struct PlannedStep {
    record: StepRecord,
    /// The program node (absent for deletes).
    pub(crate) node: Option<usize>,
    /// The recorded resource this step changes or deletes.
    pub(crate) old: Option<ResourceState>,
    /// For a `Same` step: the record's options or dependencies changed and must be saved.
    pub(crate) refresh_record: bool,
}

/// A plan: what apply will do, step by step.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) record: PlanRecord,
    pub(crate) steps: Vec<Step>,
    pub(crate) values: Vec<NodeValue>,
}

impl Plan {
    /// The serialisable plan.
    pub fn record(&self) -> &PlanRecord {
        &self.record
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.record.has_changes()
    }

    /// The Pulumi-style preview text.
    pub fn render(&self) -> String {
        crate::preview::render(&self.record)
    }
}

fn shown(value: &Value, secret: bool) -> Shown {
    if secret {
        Shown::Secret
    } else {
        Shown::Value(value.clone())
    }
}

fn shown_property(value: &PropertyValue, secret: bool) -> Shown {
    match value {
        PropertyValue::Known(v) => shown(v, secret),
        PropertyValue::Unknown => Shown::Unknown,
    }
}

/// The names of dependencies, as recorded in state.
pub(crate) fn dependency_names(program: &Program, node: usize) -> Vec<String> {
    program.nodes[node]
        .deps
        .iter()
        .map(|&d| program.nodes[d].registration.name.to_string())
        .collect()
}

/// The record of program node `n` made (or adopted) with this id, inputs and outputs.
pub(crate) fn program_record(
    program: &Program,
    n: usize,
    id: String,
    inputs: PropertyMap,
    outputs: PropertyMap,
) -> ResourceState {
    let reg = &program.nodes[n].registration;
    ResourceState {
        name: reg.name.to_string(),
        type_token: reg.type_token.clone(),
        kind: reg.kind,
        id,
        inputs,
        outputs,
        dependencies: dependency_names(program, n),
        secrets: secret_keys(reg),
        protect: reg.options.protect,
        delete_pending: false,
    }
}

/// What the planner has found so far, node by node (indexed like `program.nodes`).
struct Planner<'p> {
    program: &'p Program,
    state: Option<&'p Checkpoint>,
    options: &'p PlanOptions,
    errors: Vec<PlanError>,
    values: Vec<NodeValue>,
    steps: Vec<Option<PlannedStep>>,
    /// Each resource's checked inputs and references, for the providers' relation checks.
    checked: Vec<Option<(Properties, BTreeMap<String, InputReference>)>>,
    /// What a targeted plan covers (`None`: everything).
    reach: Option<BTreeSet<String>>,
    /// How many resources the targets leave untouched.
    untargeted: usize,
}

/// The moves the program's aliases ask for: a resource recorded under none of its names but
/// under one of its aliases (not registered, so not otherwise in the program).
fn moves(program: &Program, state: Option<&Checkpoint>) -> Vec<Move> {
    let Some(state) = state else {
        return Vec::new();
    };
    program
        .nodes
        .iter()
        .map(|node| &node.registration)
        .filter(|reg| !reg.options.aliases.is_empty() && state.resource(&reg.name).is_none())
        .filter_map(|reg| {
            let from = reg
                .options
                .aliases
                .iter()
                .find(|alias| state.resource(alias).is_some())?;
            Some(Move {
                from: from.clone(),
                to: reg.name.to_string(),
                type_token: reg.type_token.clone(),
            })
        })
        .collect()
}

pub(crate) async fn plan(
    program: &Program,
    state: Option<&Checkpoint>,
    providers: &Providers,
    options: &PlanOptions,
) -> Result<Plan, PlanErrors> {
    // Planned against the state as it is once the moves are made (apply makes them first).
    let moves = moves(program, state);
    let moved = state.filter(|_| !moves.is_empty()).map(|state| {
        let mut moved = state.clone();
        for m in &moves {
            moved.resources.rename(&m.from, &m.to);
        }
        moved
    });
    let state = moved.as_ref().or(state);
    let n = program.nodes.len();
    // Only a targeted plan needs the recorded dependents (a pass over the whole state).
    let recorded_dependents = if options.targets.is_all() {
        HashMap::new()
    } else {
        target::recorded_dependents(state)
    };
    let (reach, errors) = if options.targets.is_all() {
        (None, Vec::new())
    } else {
        match target::reach(&options.targets, Some(program), state, &recorded_dependents) {
            Ok(reach) => (Some(reach), Vec::new()),
            Err(unknown) => (
                Some(BTreeSet::new()),
                unknown
                    .into_iter()
                    .map(|resource| PlanError::UnknownTarget { resource })
                    .collect(),
            ),
        }
    };
    let mut planner = Planner {
        program,
        state,
        options,
        errors,
        values: vec![NodeValue::Unknown; n],
        steps: vec![None; n],
        checked: vec![None; n],
        reach,
        untargeted: 0,
    };
    for name in &options.replace {
        let found = program
            .index
            .get(name.as_str())
            .map(|&i| &program.nodes[i].registration);
        let reason = match found {
            None => Some("the program has no resource of that name"),
            Some(reg) if reg.kind == NodeKind::DataSource => {
                Some("it is a data source: it is read, not made")
            }
            Some(_) if state.and_then(|s| s.resources.live(name)).is_none() => {
                Some("it is not made yet: the plan creates it")
            }
            Some(_) if !planner.covers(name) => Some("it is not targeted: target it too"),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            planner.errors.push(PlanError::CannotReplace {
                resource: name.clone(),
                reason,
            });
        }
    }
    // What the stack outputs read of a resource left as recorded is what the state says (what
    // the targets need is covered, so nothing else reads it).
    let read_by_outputs: BTreeSet<&str> = if planner.reach.is_some() {
        program
            .outputs
            .values()
            .flat_map(|o| o.dependencies())
            .map(|r| r.name())
            .collect()
    } else {
        BTreeSet::new()
    };
    for &i in &program.order {
        let name = &program.nodes[i].registration.name;
        if planner.covers(name) {
            planner.plan_node(i, providers).await;
        } else {
            if program.nodes[i].registration.kind == NodeKind::Resource {
                planner.untargeted += 1;
            }
            if read_by_outputs.contains(&**name)
                && let Some(r) = state.and_then(|s| s.resources.live(name))
            {
                planner.values[i] = NodeValue::Known {
                    id: r.id.clone(),
                    outputs: r.outputs.clone(),
                };
            }
        }
    }
    let mut plan = planner.finish(providers, &recorded_dependents)?;
    plan.record.moves = moves;
    Ok(plan)
}

impl Planner<'_> {
    /// Whether the plan covers the resource `name` (every one unless targeted).
    fn covers(&self, name: &str) -> bool {
        target::covers(self.reach.as_ref(), name)
    }

    fn step_record(&self, i: usize, op: Operation, diff: Vec<PropertyDiff>) -> StepRecord {
        let reg = &self.program.nodes[i].registration;
        StepRecord {
            name: reg.name.to_string(),
            type_token: reg.type_token.clone(),
            op,
            delete_before_replace: false,
            diff,
            data_source: reg.kind == NodeKind::DataSource,
        }
    }

    /// Evaluates node `i`'s inputs against what is known so far and plans its step.
    async fn plan_node(&mut self, i: usize, providers: &Providers) {
        let reg = &self.program.nodes[i].registration;
        let resolver = NodeResolver {
            program: self.program,
            values: &self.values,
            sketch: false,
        };
        let sketcher = NodeResolver {
            sketch: true,
            ..resolver
        };
        let evaluated = match evaluate(reg, &resolver, Some(&sketcher)) {
            Ok(e) => e,
            Err((property, error)) => {
                self.errors.push(PlanError::Eval {
                    resource: reg.name.to_string(),
                    property,
                    error,
                });
                return;
            }
        };
        let Some(provider) = providers.get(&reg.type_token) else {
            self.errors.push(PlanError::NoProvider {
                resource: reg.name.to_string(),
                type_token: reg.type_token.clone(),
            });
            return;
        };
        let old = self.state.and_then(|s| s.resource(&reg.name)).cloned();
        if reg.kind == NodeKind::DataSource {
            self.read_data_source(i, provider.as_ref(), &evaluated.inputs, old)
                .await;
        } else {
            self.plan_resource(i, provider.as_ref(), evaluated, old);
        }
    }

    /// A data source is read at plan time when its inputs are known (else at apply).
    async fn read_data_source(
        &mut self,
        i: usize,
        provider: &dyn Provider,
        inputs: &Properties,
        old: Option<ResourceState>,
    ) {
        let reg = &self.program.nodes[i].registration;
        if let Some(known) = inputs.to_known() {
            let request = ReadRequest {
                stack: &self.program.stack,
                type_token: &reg.type_token,
                name: &reg.name,
                id: None,
                inputs: &known,
                outputs: None,
                created_since: None,
            };
            match provider.read(&request).await {
                Ok(Some(found)) => {
                    self.values[i] = NodeValue::Known {
                        id: found.id,
                        outputs: found.outputs,
                    }
                }
                Ok(None) => self.errors.push(PlanError::DataSourceNotFound {
                    resource: reg.name.to_string(),
                    type_token: reg.type_token.clone(),
                }),
                Err(error) => self.errors.push(PlanError::Provider {
                    resource: reg.name.to_string(),
                    action: "read",
                    error,
                }),
            }
        }
        self.steps[i] = Some(PlannedStep {
            record: self.step_record(i, Operation::Read, Vec::new()),
            node: Some(i),
            old,
            refresh_record: false,
        });
    }

    /// Checks a resource's inputs and classifies its change against its record.
    fn plan_resource(
        &mut self,
        i: usize,
        provider: &dyn Provider,
        evaluated: Evaluated,
        old: Option<ResourceState>,
    ) {
        let reg = &self.program.nodes[i].registration;
        let Evaluated {
            mut inputs,
            secrets,
            references,
            sketches,
        } = evaluated;
        let failures = provider.check(&CheckRequest {
            type_token: &reg.type_token,
            name: &reg.name,
            inputs: &inputs,
            references: &references,
        });
        self.errors
            .extend(failures.into_iter().map(|f| PlanError::Check {
                resource: reg.name.to_string(),
                type_token: reg.type_token.clone(),
                property: f.property,
                reason: f.reason,
            }));
        let secret = |k: &str| secrets.contains(k);
        let sketch = |k: &str, v: Option<&PropertyValue>| match v {
            Some(PropertyValue::Unknown) if !secret(k) => sketches.get(k).cloned(),
            _ => None,
        };

        let Some(old) = old else {
            let diff = inputs
                .iter()
                .map(|(k, v)| PropertyDiff {
                    key: k.clone(),
                    old: None,
                    new: Some(shown_property(v, secret(k))),
                    replace: false,
                    sketch: sketch(k, Some(v)),
                })
                .collect();
            self.steps[i] = Some(PlannedStep {
                record: self.step_record(i, Operation::Create, diff),
                node: Some(i),
                old: None,
                refresh_record: false,
            });
            self.checked[i] = Some((inputs, references));
            return;
        };

        apply_ignore_changes(&mut inputs, &reg.options.ignore_changes, &old.inputs);
        let forced = self.options.replace.contains(&*reg.name);
        let change = match change::classify(provider, reg, &old, &inputs, forced) {
            Ok(change) => change,
            Err(error) => {
                self.errors.push(PlanError::Provider {
                    resource: reg.name.to_string(),
                    action: "diff",
                    error,
                });
                self.checked[i] = Some((inputs, references));
                return;
            }
        };
        let op = change.operation();
        if op == Operation::Replace && (reg.options.protect || old.protect) {
            let keys: Vec<&str> = change.replacing_keys().collect();
            self.errors.push(PlanError::Protected {
                resource: reg.name.to_string(),
                action: "replace",
                reason: format!(" (a change of {} forces replacement)", keys.join(", ")),
            });
        }
        let diff = change
            .changes
            .iter()
            .map(|c| PropertyDiff {
                key: c.key.clone(),
                old: old
                    .inputs
                    .get(&c.key)
                    .map(|v| shown(v, old.secrets.contains(&c.key))),
                new: inputs
                    .get(&c.key)
                    .map(|v| shown_property(v, secret(&c.key))),
                replace: c.replace,
                sketch: sketch(&c.key, inputs.get(&c.key)),
            })
            .collect();
        self.values[i] = match op {
            Operation::Same => NodeValue::Known {
                id: old.id.clone(),
                outputs: old.outputs.clone(),
            },
            // Changed inputs and every computed output (one that is not an input) may change
            // with an update (a restarted instance gets a new public IP); the id does not.
            Operation::Update => NodeValue::Partial {
                id: old.id.clone(),
                outputs: old.outputs.clone(),
                unknown: change
                    .changes
                    .iter()
                    .map(|c| c.key.clone())
                    .chain(
                        old.outputs
                            .keys()
                            .filter(|k| !old.inputs.contains_key(*k))
                            .cloned(),
                    )
                    .collect(),
            },
            _ => NodeValue::Unknown,
        };
        let refresh_record = op == Operation::Same
            && change::record_is_stale(&old, reg, &dependency_names(self.program, i), &secrets);
        let mut record = self.step_record(i, op, diff);
        record.delete_before_replace = change.delete_before_replace;
        // An unchanged resource needs its record only if the record itself must be rewritten.
        let keep_old = op != Operation::Same || refresh_record;
        self.steps[i] = Some(PlannedStep {
            record,
            node: Some(i),
            old: keep_old.then_some(old),
            refresh_record,
        });
        self.checked[i] = Some((inputs, references));
    }

    /// Adds the relation checks, delete-first propagation and the deletes, then the plan.
    fn finish(
        mut self,
        providers: &Providers,
        recorded_dependents: &HashMap<&str, Vec<&str>>,
    ) -> Result<Plan, PlanErrors> {
        let program = self.program;
        self.errors
            .extend(check_related(program, providers, &self.checked));
        propagate_delete_before_replace(program, &mut self.steps);
        let mut ordered: Vec<PlannedStep> = program
            .order
            .iter()
            .filter_map(|&i| self.steps[i].take())
            .collect();
        if let (Some(reach), Some(state)) = (&self.reach, self.state) {
            let mut left: Vec<&str> = state
                .resources
                .iter()
                .filter(|r| r.kind == NodeKind::Resource)
                .map(|r| r.name.as_str())
                .filter(|n| !program.index.contains_key(*n) && !reach.contains(*n))
                .collect();
            left.dedup();
            self.untargeted += left.len();
        }
        let reach = self.reach.as_ref();
        let covers = |name: &str| target::covers(reach, name);
        ordered.extend(plan_deletes(program, self.state, &mut self.errors, covers));
        if reach.is_some() {
            let errors = untargeted_dependents(&ordered, recorded_dependents, covers);
            self.errors.extend(errors);
        }

        if !self.errors.is_empty() {
            return Err(ErrorList(self.errors));
        }
        let interrupted = self.state.map(interrupted).unwrap_or_default();
        let (records, steps): (Vec<StepRecord>, Vec<Step>) = ordered
            .into_iter()
            .map(|p| {
                let step = Step {
                    node: p.node,
                    old: p.old,
                    refresh_record: p.refresh_record,
                };
                (p.record, step)
            })
            .unzip();
        Ok(Plan {
            record: PlanRecord {
                version: PLAN_VERSION,
                stack: program.stack.clone(),
                base: BaseState::of(self.state),
                interrupted,
                replace: self.options.replace.clone(),
                targets: self.options.targets.clone(),
                untargeted: self.untargeted,
                moves: Vec::new(),
                rolls: crate::roll::records(program, &records),
                steps: records,
            },
            steps,
            values: self.values,
        })
    }
}

/// The targeted replacements and deletes that recorded resources outside the reach depend
/// on.
fn untargeted_dependents(
    steps: &[PlannedStep],
    recorded_dependents: &HashMap<&str, Vec<&str>>,
    covers: impl Fn(&str) -> bool,
) -> Vec<PlanError> {
    let mut errors = Vec::new();
    for step in steps {
        let action = match step.record.op {
            Operation::Replace => "replace",
            Operation::Delete if !step.record.data_source => "delete",
            _ => continue,
        };
        let mut dependents: Vec<String> = recorded_dependents
            .get(step.record.name.as_str())
            .into_iter()
            .flatten()
            .filter(|d| !covers(d))
            .map(|d| (*d).to_owned())
            .collect();
        dependents.sort();
        dependents.dedup();
        if !dependents.is_empty() {
            errors.push(PlanError::UntargetedDependents {
                resource: step.record.name.clone(),
                action,
                dependents,
            });
        }
    }
    errors
}

/// Asks each provider, once, to check the relations between all the resources it handles.
fn check_related(
    program: &Program,
    providers: &Providers,
    checked: &[Option<(Properties, BTreeMap<String, InputReference>)>],
) -> Vec<PlanError> {
    let mut groups: Vec<(&std::sync::Arc<dyn Provider>, Vec<CheckRequest<'_>>)> = Vec::new();
    for &i in &program.order {
        let Some((inputs, references)) = &checked[i] else {
            continue;
        };
        let reg = &program.nodes[i].registration;
        let Some(provider) = providers.get(&reg.type_token) else {
            continue;
        };
        let request = CheckRequest {
            type_token: &reg.type_token,
            name: &reg.name,
            inputs,
            references,
        };
        match groups
            .iter_mut()
            .find(|(p, _)| std::sync::Arc::ptr_eq(p, provider))
        {
            Some((_, requests)) => requests.push(request),
            None => groups.push((provider, vec![request])),
        }
    }
    let type_of = |name: &str| {
        program
            .index
            .get(name)
            .map(|&i| program.nodes[i].registration.type_token.clone())
            .unwrap_or_default()
    };
    groups
        .into_iter()
        .flat_map(|(provider, requests)| provider.check_related(&requests))
        .map(|(resource, failure)| PlanError::Check {
            type_token: type_of(&resource),
            resource,
            property: failure.property,
            reason: failure.reason,
        })
        .collect()
}

/// A resource replaced delete-first takes every replaced dependent with it: those must be
/// deleted first too, or the dependency could not be deleted.
fn propagate_delete_before_replace(program: &Program, steps: &mut [Option<PlannedStep>]) {
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); program.nodes.len()];
    for (i, node) in program.nodes.iter().enumerate() {
        for &d in &node.deps {
            dependents[d].push(i);
        }
    }
    let is_dbr = |s: &Option<PlannedStep>| {
        s.as_ref()
            .is_some_and(|s| s.record.op == Operation::Replace && s.record.delete_before_replace)
    };
    let mut stack: Vec<usize> = (0..steps.len()).filter(|&i| is_dbr(&steps[i])).collect();
    while let Some(i) = stack.pop() {
        for &d in &dependents[i] {
            if let Some(step) = steps[d].as_mut()
                && step.record.op == Operation::Replace
                && !step.record.delete_before_replace
            {
                step.record.delete_before_replace = true;
                stack.push(d);
            }
        }
    }
}

/// Deletes of recorded resources no longer in the program (and of leftover old copies of
/// replaced ones) that the plan `covers`, dependents before their dependencies.
fn plan_deletes(
    program: &Program,
    state: Option<&Checkpoint>,
    errors: &mut Vec<PlanError>,
    covers: impl Fn(&str) -> bool,
) -> Vec<PlannedStep> {
    let Some(state) = state else {
        return Vec::new();
    };
    let doomed: Vec<&ResourceState> = state
        .resources
        .iter()
        .filter(|r| r.delete_pending || !program.index.contains_key(r.name.as_str()))
        .filter(|r| covers(&r.name))
        .collect();
    for r in doomed.iter().filter(|r| r.protect && !r.delete_pending) {
        errors.push(PlanError::Protected {
            resource: r.name.clone(),
            action: "delete",
            reason: " (it is no longer in the program)".to_owned(),
        });
    }
    // Reverse topological order over recorded dependencies among the doomed.
    let names: HashMap<&str, Vec<usize>> =
        doomed
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, r)| {
                m.entry(r.name.as_str()).or_default().push(i);
                m
            });
    let deps: Vec<BTreeSet<usize>> = doomed
        .iter()
        .map(|r| {
            r.dependencies
                .iter()
                .filter_map(|d| names.get(d.as_str()))
                .flatten()
                .copied()
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(doomed.len());
    let mut placed = vec![false; doomed.len()];
    let mut dependents: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents.entry(d).or_default().push(i);
        }
    }
    // Place a resource once all its dependents are placed.
    let mut remaining: Vec<usize> = (0..doomed.len())
        .map(|i| dependents.get(&i).map_or(0, Vec::len))
        .collect();
    let mut ready: Vec<usize> = (0..doomed.len())
        .filter(|&i| remaining[i] == 0)
        .rev()
        .collect();
    while let Some(i) = ready.pop() {
        placed[i] = true;
        order.push(i);
        for &d in deps[i].iter().rev() {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push(d);
            }
        }
    }
    // Recorded dependencies cannot cycle, but never drop a resource if they somehow do.
    order.extend((0..doomed.len()).filter(|&i| !placed[i]));
    order
        .into_iter()
        .map(|i| {
            let r = doomed[i];
            PlannedStep {
                record: StepRecord {
                    name: r.name.clone(),
                    type_token: r.type_token.clone(),
                    op: Operation::Delete,
                    delete_before_replace: false,
                    diff: Vec::new(),
                    data_source: r.kind == NodeKind::DataSource,
                },
                node: None,
                old: Some(r.clone()),
                refresh_record: false,
            }
        })
        .collect()
}
