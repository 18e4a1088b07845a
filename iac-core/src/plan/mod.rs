//! Planning: diff the program against the stack's recorded state.
//!
//! The planner walks the program in topological order, evaluates each resource's inputs
//! against what is known at preview time (state outputs of unchanged resources, data sources
//! read now; everything else "known after apply"), asks the provider to `check` and `diff`,
//! and produces a [`Plan`]: one step per resource with a per-property diff. The plan's
//! serialisable part ([`PlanRecord`]) never contains a secret value. Apply re-evaluates inputs
//! as outputs become known and may only do less than the plan said, never more.
//!
//! - `planner.rs`: one resource or data source at a time, then the relation checks;
//! - `deletes.rs`: what leaves the program, in reverse dependency order, and the rules for
//!   deleting (delete-first replacement spreads to dependents; a targeted delete needs its
//!   dependents targeted);
//! - `error.rs`: why a plan cannot be made.

mod deletes;
mod error;
mod planner;

use std::collections::BTreeSet;

pub use error::{PlanError, PlanErrors};

use crate::evaluate::NodeValue;
use crate::provider::Providers;
use crate::record::{Move, PlanRecord, StepRecord};
use crate::stack::Program;
use crate::state::{Checkpoint, ResourceState};
use crate::target::{RecordedDependents, Targets};
use planner::Planner;

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
    /// [`Targets::dependents`](crate::Targets::dependents)).
    pub targets: Targets,
}

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
    step: Step,
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

/// Plans `program` against `state` (the stack's recorded state, secrets opened).
pub(crate) async fn plan(
    program: &Program,
    state: Option<&Checkpoint>,
    providers: &Providers,
    options: &PlanOptions,
) -> Result<Plan, PlanErrors> {
    // Planned against the state as it is once the moves are made (apply makes them first).
    let moves = moves(program, state);
    let moved = moved(state, &moves);
    let state = moved.as_ref().or(state);
    let recorded_dependents = RecordedDependents::new(state);
    let mut planner = Planner::new(program, state, options, &recorded_dependents);
    planner.check_replacements();
    planner.plan_program(providers).await;
    let mut plan = planner.finish(providers, &recorded_dependents)?;
    plan.record.moves = moves;
    Ok(plan)
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

/// The state with the `moves` made (none when there are no moves).
fn moved(state: Option<&Checkpoint>, moves: &[Move]) -> Option<Checkpoint> {
    let state = state.filter(|_| !moves.is_empty())?;
    let mut moved = state.clone();
    for m in moves {
        moved.resources.rename(&m.from, &m.to);
    }
    Some(moved)
}
