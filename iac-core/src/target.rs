//! Targeted runs: which resources a `--target` plan or refresh covers.
//!
//! A target covers itself and, transitively, what it needs (its dependencies, so its inputs
//! can be evaluated); with [`Targets::dependents`] also what depends on it (and what that
//! needs). The walk starts at the targets and visits only what it reaches, so a targeted plan
//! of a large stack costs what its reach costs; the one map built whole is the recorded
//! dependents, a pass over the state.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::stack::Program;
use crate::state::Checkpoint;

/// Which resources a run covers: none named (and none excluded) means every one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// The resources named (in the program or recorded).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub names: BTreeSet<String>,
    /// Also cover what depends on them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dependents: bool,
    /// Every resource but these is a target (one of these is still covered where another
    /// needs it); a name neither in the program nor recorded is no error.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub excluded: BTreeSet<String>,
}

impl Targets {
    /// Every resource.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only `names` and what they need.
    pub fn only<I: Into<String>>(names: impl IntoIterator<Item = I>) -> Self {
        Self {
            names: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Every resource but `names` (and what the others need).
    pub fn all_but<I: Into<String>>(names: impl IntoIterator<Item = I>) -> Self {
        Self {
            excluded: names.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Also what depends on the targets.
    pub fn with_dependents(mut self) -> Self {
        self.dependents = true;
        self
    }

    /// Whether no target is named and none excluded: the run covers every resource.
    pub fn is_all(&self) -> bool {
        self.names.is_empty() && self.excluded.is_empty()
    }
}

/// Whether a run with `reach` (`None`: not targeted) covers the resource `name`.
pub(crate) fn covers(reach: Option<&BTreeSet<String>>, name: &str) -> bool {
    reach.is_none_or(|r| r.contains(name))
}

/// Which recorded resources depend on each name: worked out from the whole state at the
/// first question (a targeted plan that deletes and replaces nothing never asks one).
pub(crate) struct RecordedDependents<'s> {
    state: Option<&'s Checkpoint>,
    map: OnceLock<HashMap<&'s str, Vec<&'s str>>>,
}

impl<'s> RecordedDependents<'s> {
    pub(crate) fn new(state: Option<&'s Checkpoint>) -> Self {
        Self {
            state,
            map: OnceLock::new(),
        }
    }

    /// The recorded resources that depend on `name`.
    pub(crate) fn of(&self, name: &str) -> &[&'s str] {
        let map = self.map.get_or_init(|| {
            let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
            for r in self.state.iter().flat_map(|s| s.resources.iter()) {
                for d in &r.dependencies {
                    dependents
                        .entry(d.as_str())
                        .or_default()
                        .push(r.name.as_str());
                }
            }
            dependents
        });
        map.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The names a targeted run covers, given the program (`None` for a refresh, which follows
/// the recorded dependencies) and the state. `Err` lists the targets neither has.
pub(crate) fn reach(
    targets: &Targets,
    program: Option<&Program>,
    state: Option<&Checkpoint>,
    recorded_dependents: &RecordedDependents<'_>,
) -> Result<BTreeSet<String>, Vec<String>> {
    let in_program = |name: &str| program.and_then(|p| p.index.get(name).copied());
    let recorded = |name: &str| state.and_then(|s| s.resource(name));
    let unknown: Vec<String> = targets
        .names
        .iter()
        .filter(|n| in_program(n).is_none() && recorded(n).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let mut covered: BTreeSet<String> = targets.names.clone();
    if !targets.excluded.is_empty() {
        let in_program = program
            .into_iter()
            .flat_map(|p| p.nodes.iter().map(|n| n.registration.name.to_string()));
        let recorded = state
            .into_iter()
            .flat_map(|s| s.resources.iter().map(|r| r.name.clone()));
        covered.extend(
            in_program
                .chain(recorded)
                .filter(|name| !targets.excluded.contains(name)),
        );
    }
    if targets.dependents {
        let program_dependents = program.map(program_dependents).unwrap_or_default();
        let mut queue: Vec<String> = covered.iter().cloned().collect();
        while let Some(name) = queue.pop() {
            let from_program = in_program(&name)
                .and_then(|i| program_dependents.get(&i))
                .into_iter()
                .flatten()
                .filter_map(|&d| program.map(|p| p.nodes[d].registration.name.to_string()));
            let from_state = recorded_dependents
                .of(&name)
                .iter()
                .map(|d| (*d).to_owned());
            for dependent in from_program.chain(from_state).collect::<Vec<_>>() {
                if covered.insert(dependent.clone()) {
                    queue.push(dependent);
                }
            }
        }
    }
    let mut queue: Vec<String> = covered.iter().cloned().collect();
    while let Some(name) = queue.pop() {
        let needs: Vec<String> = match (program, in_program(&name)) {
            (Some(p), Some(i)) => p.nodes[i]
                .deps
                .iter()
                .map(|&d| p.nodes[d].registration.name.to_string())
                .collect(),
            // A refresh follows what is recorded; a plan deletes a recorded-only resource
            // without needing anything of its dependencies.
            (None, _) => recorded(&name)
                .map(|r| r.dependencies.clone())
                .unwrap_or_default(),
            (Some(_), None) => Vec::new(),
        };
        for dependency in needs {
            if covered.insert(dependency.clone()) {
                queue.push(dependency);
            }
        }
    }
    Ok(covered)
}

/// Each program node's dependents, by index.
fn program_dependents(program: &Program) -> HashMap<usize, Vec<usize>> {
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, node) in program.nodes.iter().enumerate() {
        for &d in &node.deps {
            dependents.entry(d).or_default().push(i);
        }
    }
    dependents
}
