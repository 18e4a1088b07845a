//! The rolls of a plan and of an apply: which members of each rolling group change, and in
//! what order (the group's, or its gate's when that keeps dependencies first). What a program
//! declares — the groups, their gates — is in `gate.rs`; the apply runs the members one at a
//! time in `apply/`.

use std::collections::HashMap;

use serde_json::Value;

use crate::gate::ProgramGroup;
use crate::record::{Operation, RollRecord, StepRecord};
use crate::stack::Program;

/// Whether a member of `group` whose step is `op` rolls: one updated, or replaced unless the
/// group rolls updates only (a member created, deleted or left alone never does).
fn rolls(group: &ProgramGroup, op: Operation) -> bool {
    match op {
        Operation::Update => true,
        Operation::Replace => !group.updates_only,
        _ => false,
    }
}

/// The rolls of a plan: for each group, its members the steps update or replace.
pub(crate) fn records(program: &Program, steps: &[StepRecord]) -> Vec<RollRecord> {
    if program.groups.is_empty() {
        return Vec::new();
    }
    let index = step_index(steps);
    program
        .groups
        .iter()
        .filter_map(|group| {
            let rolled: Vec<(usize, usize)> = rolled(group, program, steps, &index).collect();
            let completions = rolled
                .iter()
                .filter_map(|&(member, s)| {
                    let completion = group.completions.get(&member)?;
                    let name = program.nodes[*completion].registration.name.as_ref();
                    let step = &steps[*index.get(name)?];
                    (step.op != Operation::Same).then(|| (steps[s].name.clone(), step.name.clone()))
                })
                .collect();
            (!rolled.is_empty()).then(|| RollRecord {
                group: group.name.clone(),
                members: rolled.iter().map(|&(_, s)| steps[s].name.clone()).collect(),
                completions,
                gate: group.gate.describe(),
                timeout_ms: u64::try_from(group.timeout.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect()
}

/// Each step's index by its resource's name.
fn step_index(steps: &[StepRecord]) -> HashMap<&str, usize> {
    steps
        .iter()
        .enumerate()
        .map(|(s, step)| (step.name.as_str(), s))
        .collect()
}

/// The rolls of an apply: for each group, the steps of its members that roll, in the order
/// its gate asks for when that is a reordering that keeps each member after what it depends
/// on, else the group's.
pub(crate) async fn orders(
    program: &Program,
    steps: &[StepRecord],
    input: impl Fn(&ProgramGroup) -> Value,
) -> Vec<Vec<usize>> {
    if program.groups.is_empty() {
        return Vec::new();
    }
    let index = step_index(steps);
    let mut orders = Vec::new();
    for group in &program.groups {
        // (node, step) of each rolled member, in the group's order.
        let declared: Vec<(usize, usize)> = rolled(group, program, steps, &index).collect();
        let names: Vec<String> = declared
            .iter()
            .map(|&(_, s)| steps[s].name.clone())
            .collect();
        let asked = if declared.len() > 1 {
            group.gate.order(&names, &input(group)).await
        } else {
            names.clone()
        };
        let reordered: Option<Vec<(usize, usize)>> = asked
            .iter()
            .map(|name| names.iter().position(|n| n == name).map(|i| declared[i]))
            .collect();
        let is_reordering = |order: &[(usize, usize)]| {
            let mut sorted = order.to_vec();
            sorted.sort_unstable();
            let mut all = declared.clone();
            all.sort_unstable();
            sorted == all
        };
        let keeps_dependencies = |order: &[(usize, usize)]| {
            order.iter().enumerate().all(|(i, &(earlier, _))| {
                order[i + 1..]
                    .iter()
                    .all(|&(later, _)| !program.depends_on(earlier, later))
            })
        };
        let order = match reordered {
            Some(order) if is_reordering(&order) && keeps_dependencies(&order) => order,
            _ => declared,
        };
        orders.push(order.into_iter().map(|(_, s)| s).collect());
    }
    orders
}

/// The (node, step) of each member of `group` that rolls, in the group's order.
fn rolled<'a>(
    group: &'a ProgramGroup,
    program: &'a Program,
    steps: &'a [StepRecord],
    index: &'a HashMap<&str, usize>,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    group.members.iter().filter_map(move |&member| {
        let step = *index.get(program.nodes[member].registration.name.as_ref())?;
        rolls(group, steps[step].op).then_some((member, step))
    })
}
