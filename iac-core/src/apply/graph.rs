//! The apply's task graph: one task per step that makes something ready (create, update,
//! replace, read) and one per step that makes something gone (delete, the old copy of a
//! replacement), ordered by the program's dependencies, the recorded ones of what is deleted,
//! delete-first replacements, and the rolling groups' members one after another.

use std::collections::{BTreeSet, HashMap};

use crate::plan::Plan;
use crate::record::{Operation, StepRecord};
use crate::stack::Program;

/// What a task does for its step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TaskKind {
    /// Makes the step's resource ready: created, updated, read, or the new copy of a
    /// replacement.
    Ready,
    /// Makes the step's old resource gone: deleted, or the old copy of a replacement.
    Gone,
}

pub(super) struct TaskGraph {
    /// Each task's step and kind.
    pub(super) tasks: Vec<(usize, TaskKind)>,
    /// The tasks that wait for each task.
    pub(super) dependents: Vec<Vec<usize>>,
    /// How many tasks each task waits for.
    pub(super) prereq_count: Vec<usize>,
    /// The tasks each task waits for.
    pub(super) prereqs: Vec<Vec<usize>>,
    /// The gates of the tasks that begin or end a rolled member, by task.
    pub(super) gates: HashMap<usize, TaskGates>,
    /// The task that ends a rolled member of two tasks (a replacement), by the task that
    /// begins it: once begun, a member is finished even after a stop.
    pub(super) member_ends: HashMap<usize, usize>,
}

/// The gate questions around one task of a rolled member.
#[derive(Clone, Copy)]
pub(super) struct TaskGates {
    /// The rolling group (an index of the program's groups).
    pub(super) group: usize,
    /// The member's step (the task may be the step completing it).
    pub(super) member: usize,
    /// Asked before the task: it begins the member.
    pub(super) before: bool,
    /// Asked after the task: it ends the member.
    pub(super) after: bool,
}

impl TaskGates {
    /// No question yet about the member of step `member` of group `group`.
    fn of(group: usize, member: usize) -> Self {
        Self {
            group,
            member,
            before: false,
            after: false,
        }
    }
}

/// A plan whose operations cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the plan's operations cannot be ordered (replacements of {} wait on each other): mark them delete_before_replace consistently or replace them in separate applies",
    .stuck.join(", ")
)]
pub struct OrderingError {
    /// The resources whose operations wait on each other.
    pub stuck: Vec<String>,
}

/// The tasks of a plan's steps, by step.
struct Tasks {
    tasks: Vec<(usize, TaskKind)>,
    ready_of_node: HashMap<usize, usize>,
    ready_of_step: HashMap<usize, usize>,
    gone_of_step: HashMap<usize, usize>,
}

impl Tasks {
    fn of(plan: &Plan) -> Self {
        let mut tasks = Self {
            tasks: Vec::new(),
            ready_of_node: HashMap::new(),
            ready_of_step: HashMap::new(),
            gone_of_step: HashMap::new(),
        };
        for (s, step) in plan.steps.iter().enumerate() {
            let op = plan.record.steps[s].op;
            if op != Operation::Delete {
                tasks.ready_of_step.insert(s, tasks.tasks.len());
                if let Some(n) = step.node {
                    tasks.ready_of_node.insert(n, tasks.tasks.len());
                }
                tasks.tasks.push((s, TaskKind::Ready));
            }
            if matches!(op, Operation::Replace | Operation::Delete) {
                tasks.gone_of_step.insert(s, tasks.tasks.len());
                tasks.tasks.push((s, TaskKind::Gone));
            }
        }
        tasks
    }

    /// The first and the last task of a rolled step: a replacement that deletes first begins
    /// with the delete, one that creates first ends with it.
    fn roll_ends(&self, record: &StepRecord, s: usize) -> (Option<usize>, Option<usize>) {
        let replace = record.op == Operation::Replace;
        let ready = self.ready_of_step.get(&s).copied();
        let gone = self.gone_of_step.get(&s).copied();
        match (replace, record.delete_before_replace) {
            (true, true) => (gone, ready),
            (true, false) => (ready, gone),
            (false, _) => (ready, ready),
        }
    }
}

impl TaskGraph {
    /// The tasks of `plan`'s steps and their order; `rolls` holds each rolling group's
    /// rolled steps in the order they roll.
    pub(super) fn build(
        plan: &Plan,
        program: &Program,
        rolls: &[Vec<usize>],
    ) -> Result<Self, OrderingError> {
        let tasks = Tasks::of(plan);
        let mut prereqs = step_prereqs(plan, program, &tasks);
        let (gates, member_ends) = chain_rolls(plan, program, rolls, &tasks, &mut prereqs);
        let mut dependents = vec![Vec::new(); tasks.tasks.len()];
        for (t, ps) in prereqs.iter().enumerate() {
            for &p in ps {
                dependents[p].push(t);
            }
        }
        let graph = Self {
            prereq_count: prereqs.iter().map(BTreeSet::len).collect(),
            prereqs: prereqs.into_iter().map(Vec::from_iter).collect(),
            tasks: tasks.tasks,
            dependents,
            gates,
            member_ends,
        };
        graph.check_acyclic(&plan.record.steps)?;
        Ok(graph)
    }

    fn check_acyclic(&self, records: &[StepRecord]) -> Result<(), OrderingError> {
        let mut waiting = self.prereq_count.clone();
        let mut ready: Vec<usize> = (0..waiting.len()).filter(|&t| waiting[t] == 0).collect();
        let mut done = 0;
        while let Some(t) = ready.pop() {
            done += 1;
            for &d in &self.dependents[t] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        if done == waiting.len() {
            return Ok(());
        }
        let stuck: BTreeSet<&str> = (0..waiting.len())
            .filter(|&t| waiting[t] > 0)
            .map(|t| records[self.tasks[t].0].name.as_str())
            .collect();
        Err(OrderingError {
            stuck: stuck.into_iter().map(str::to_owned).collect(),
        })
    }
}

/// What each task waits for: a ready task for what its resource depends on (and, replacing
/// delete-first, for its old copy to be gone); a gone task for what depended on the old
/// resource to be gone or moved to the new one (and, replacing create-first, for the new copy).
fn step_prereqs(plan: &Plan, program: &Program, tasks: &Tasks) -> Vec<BTreeSet<usize>> {
    let mut old_dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (s, step) in plan.steps.iter().enumerate() {
        for dep in step.old.iter().flat_map(|o| o.dependencies.iter()) {
            old_dependents.entry(dep.as_str()).or_default().push(s);
        }
    }
    let mut prereqs: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); tasks.tasks.len()];
    for (t, &(s, kind)) in tasks.tasks.iter().enumerate() {
        let step = &plan.steps[s];
        let rec = &plan.record.steps[s];
        let dbr = rec.op == Operation::Replace && rec.delete_before_replace;
        match kind {
            TaskKind::Ready => {
                if rec.op == Operation::Same {
                    continue;
                }
                if let Some(n) = step.node {
                    let deps = program.nodes[n].deps.iter();
                    prereqs[t].extend(deps.filter_map(|d| tasks.ready_of_node.get(d)));
                }
                if dbr {
                    prereqs[t].extend(tasks.gone_of_step.get(&s));
                }
            }
            TaskKind::Gone => {
                if rec.op == Operation::Replace && !dbr {
                    prereqs[t].extend(tasks.ready_of_step.get(&s));
                }
                let name = step.old.as_ref().map_or("", |o| o.name.as_str());
                for &d in old_dependents.get(name).into_iter().flatten() {
                    if d == s {
                        continue;
                    }
                    if let Some(&g) = tasks.gone_of_step.get(&d) {
                        prereqs[t].insert(g);
                    } else if !dbr {
                        prereqs[t].extend(tasks.ready_of_step.get(&d));
                    }
                }
            }
        }
    }
    prereqs
}

/// A rolling group's members one after another: each begins once the one before it (and its
/// gate) is done, and once what the gate reads is applied; a member completed by another
/// step ends with that step's task, after the member's own. Returns the gates by task, and
/// the end of each member of two tasks or more by its beginning.
fn chain_rolls(
    plan: &Plan,
    program: &Program,
    rolls: &[Vec<usize>],
    tasks: &Tasks,
    prereqs: &mut [BTreeSet<usize>],
) -> (HashMap<usize, TaskGates>, HashMap<usize, usize>) {
    let mut gates: HashMap<usize, TaskGates> = HashMap::new();
    let mut member_ends = HashMap::new();
    for (g, (group, roll)) in program.groups.iter().zip(rolls).enumerate() {
        let mut previous: Option<usize> = None;
        for &s in roll {
            let (first, own_last) = tasks.roll_ends(&plan.record.steps[s], s);
            let completion = plan.steps[s]
                .node
                .and_then(|n| group.completions.get(&n))
                .and_then(|c| tasks.ready_of_node.get(c))
                .copied();
            let last = match (completion, own_last) {
                (Some(completion), Some(own_last)) => {
                    prereqs[completion].insert(own_last);
                    Some(completion)
                }
                _ => own_last,
            };
            if let Some(first) = first {
                prereqs[first].extend(previous);
                let read = group.input_deps.iter();
                prereqs[first].extend(read.filter_map(|d| tasks.ready_of_node.get(d)));
                gates.entry(first).or_insert(TaskGates::of(g, s)).before = true;
            }
            if let Some(last) = last {
                gates.entry(last).or_insert(TaskGates::of(g, s)).after = true;
            }
            if let (Some(first), Some(last)) = (first, last)
                && first != last
            {
                member_ends.insert(first, last);
            }
            previous = last;
        }
    }
    (gates, member_ends)
}
