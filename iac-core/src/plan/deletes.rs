//! What leaves the program: its deletes, dependents first, and the rules that tie a delete
//! or a delete-first replacement to what depends on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{PlanError, PlannedStep, Step};
use crate::record::{Operation, StepRecord};
use crate::stack::{NodeKind, Program};
use crate::state::{Checkpoint, ResourceState};
use crate::target::RecordedDependents;

/// The targeted replacements and deletes that recorded resources outside the reach depend
/// on.
pub(super) fn untargeted_dependents(
    steps: &[PlannedStep],
    recorded_dependents: &RecordedDependents<'_>,
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
            .of(&step.record.name)
            .iter()
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

/// A resource replaced delete-first takes every replaced dependent with it: those must be
/// deleted first too, or the dependency could not be deleted.
pub(super) fn propagate_delete_before_replace(
    program: &Program,
    steps: &mut [Option<PlannedStep>],
    planned: &[usize],
) {
    let is_dbr = |s: &Option<PlannedStep>| {
        s.as_ref()
            .is_some_and(|s| s.record.op == Operation::Replace && s.record.delete_before_replace)
    };
    let mut stack: Vec<usize> = planned
        .iter()
        .copied()
        .filter(|&i| is_dbr(&steps[i]))
        .collect();
    if stack.is_empty() {
        return;
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); program.nodes.len()];
    for (i, node) in program.nodes.iter().enumerate() {
        for &d in &node.deps {
            dependents[d].push(i);
        }
    }
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
pub(super) fn plan_deletes(
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
    dependents_first(&doomed)
        .into_iter()
        .map(|i| delete_step(doomed[i]))
        .collect()
}

/// The order in which `records` can be deleted: each after every record that depends on it.
fn dependents_first(records: &[&ResourceState]) -> Vec<usize> {
    let names: HashMap<&str, Vec<usize>> =
        records
            .iter()
            .enumerate()
            .fold(HashMap::new(), |mut m, (i, r)| {
                m.entry(r.name.as_str()).or_default().push(i);
                m
            });
    let deps: Vec<BTreeSet<usize>> = records
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
    let mut dependents: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents.entry(d).or_default().push(i);
        }
    }
    // Place a record once all its dependents are placed.
    let mut remaining: Vec<usize> = (0..records.len())
        .map(|i| dependents.get(&i).map_or(0, Vec::len))
        .collect();
    let mut ready: Vec<usize> = (0..records.len())
        .filter(|&i| remaining[i] == 0)
        .rev()
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(records.len());
    let mut placed = vec![false; records.len()];
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
    // Recorded dependencies cannot cycle, but never drop a record if they somehow do.
    order.extend((0..records.len()).filter(|&i| !placed[i]));
    order
}

/// The step deleting `record`.
fn delete_step(record: &ResourceState) -> PlannedStep {
    PlannedStep {
        record: StepRecord {
            name: record.name.clone(),
            type_token: record.type_token.clone(),
            op: Operation::Delete,
            delete_before_replace: false,
            diff: Vec::new(),
            data_source: record.kind == NodeKind::DataSource,
        },
        step: Step {
            node: None,
            old: Some(record.clone()),
            refresh_record: false,
        },
    }
}
