//! The plan as it is saved and shown: steps, their property diffs and the rolls, never a
//! secret value. [`PlanRecord`] is what `--plan-out` writes and a saved-plan apply reads back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::property::PropertyMap;
use crate::state::{Checkpoint, PendingKind};
use crate::target::Targets;

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
    /// The resources whose replacement was asked for ([`PlanOptions::replace`](crate::PlanOptions::replace)); applying
    /// the saved plan replaces them again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub replace: BTreeSet<String>,
    /// The resources a targeted plan covers ([`PlanOptions::targets`](crate::PlanOptions::targets)); applying the saved
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
    pub fn from_json(text: &str) -> Result<Self, PlanFileError> {
        let record: Self = serde_json::from_str(text).map_err(|e| PlanFileError::NotAPlan {
            reason: e.to_string(),
        })?;
        if record.version != PLAN_VERSION {
            return Err(PlanFileError::UnsupportedVersion {
                found: record.version,
            });
        }
        Ok(record)
    }
}

/// A roll the plan makes: the members it updates or replaces, in order, and their gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollRecord {
    /// The group.
    pub group: String,
    /// The members that roll, in order.
    pub members: Vec<String>,
    /// The step that completes a member before its gate is asked after it, by member.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub completions: BTreeMap<String, String>,
    /// What the gate checks.
    pub gate: String,
    /// How long each question may wait for a yes, in milliseconds.
    pub timeout_ms: u64,
}

impl fmt::Display for RollRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self
            .members
            .iter()
            .map(|member| match self.completions.get(member) {
                Some(completion) => format!("{member} (then {completion})"),
                None => member.clone(),
            })
            .collect();
        write!(
            f,
            "{}: {}, gate: {} (before and after each, up to {})",
            self.group,
            members.join(" → "),
            self.gate,
            humantime::format_duration(Duration::from_millis(self.timeout_ms))
        )
    }
}

/// A saved plan that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    /// The text is not a plan.
    #[error("not a plan file: {reason}")]
    NotAPlan {
        /// What the JSON reader said.
        reason: String,
    },
    /// The plan was written in another format version.
    #[error(
        "plan format version {found} is not supported (this version writes {PLAN_VERSION}): make the plan again"
    )]
    UnsupportedVersion {
        /// The version the file has.
        found: u32,
    },
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
