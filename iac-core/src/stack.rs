//! Registration: a stack program registers resources, and `build` turns them into a
//! validated [`Program`] — the whole dependency graph, before any provider is called.
//!
//! This module owns the graph's shape (edges from input references and `depends_on`), its
//! validation (duplicate names, references to another stack, unknown `depends_on` names,
//! cycles) and the deterministic topological order every later phase walks. It never calls a
//! provider and never evaluates an output.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use litemap::LiteMap;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Value;

use crate::errors::ErrorList;
use crate::gate::{ProgramGroup, RollingGroup};
use crate::output::{IntoInput, Output, ResourceRef, StackId};
use crate::resource::{Inputs, IntoInputs, Resource, ResourceOptions, ResourceType};

/// Whether a node manages a resource or only reads one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A managed resource: created, updated and deleted by the engine.
    Resource,
    /// A data source: read through its provider, never mutated.
    DataSource,
}

/// One registration, as the stack program made it.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) name: Arc<str>,
    pub(crate) type_token: String,
    pub(crate) kind: NodeKind,
    pub(crate) inputs: LiteMap<String, Output<Value>>,
    pub(crate) options: ResourceOptions,
    pub(crate) secret_outputs: Arc<BTreeSet<String>>,
}

/// A registration problem, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// Two registrations share a name.
    #[error(
        "resource name `{name}` is registered twice in stack `{stack}` (as {first_type} and as {second_type}): give each resource a unique name"
    )]
    DuplicateName {
        /// The stack.
        stack: String,
        /// The duplicated name.
        name: String,
        /// Type of the first registration.
        first_type: String,
        /// Type of the second registration.
        second_type: String,
    },
    /// The names form a dependency cycle.
    #[error(
        "dependency cycle in stack `{stack}`: {} (each depends on the next): remove one of these references or depends_on entries",
        cycle.join(" -> ")
    )]
    Cycle {
        /// The stack.
        stack: String,
        /// The names on the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A resource uses an output of a resource registered in another stack.
    #[error(
        "resource `{resource}` in stack `{stack}` references `{referenced}` of stack `{other_stack}`: a stack may only reference its own resources; pass the value in as configuration instead"
    )]
    ForeignReference {
        /// The stack.
        stack: String,
        /// The resource (or stack output) holding the reference.
        resource: String,
        /// The other stack.
        other_stack: String,
        /// The referenced resource.
        referenced: String,
    },
    /// `depends_on` names a resource that is not registered.
    #[error(
        "resource `{resource}` in stack `{stack}` depends on `{missing}`, which is not registered: fix the name in depends_on or register it"
    )]
    UnknownDependency {
        /// The stack.
        stack: String,
        /// The resource.
        resource: String,
        /// The name not found.
        missing: String,
    },
    /// An alias names a registered resource, or two resources have the same alias.
    #[error(
        "resource `{resource}` in stack `{stack}` has the alias `{alias}`, but {reason}: an alias names what the resource was called before, and only one resource can have been"
    )]
    InvalidAlias {
        /// The stack.
        stack: String,
        /// The resource.
        resource: String,
        /// The alias.
        alias: String,
        /// What else has that name.
        reason: String,
    },
    /// A rolling group that cannot roll as declared.
    #[error("rolling group `{group}` in stack `{stack}`: {reason}")]
    RollingGroup {
        /// The stack.
        stack: String,
        /// The group.
        group: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A name that cannot be used.
    #[error("invalid {what} name `{name}`: {reason}")]
    InvalidName {
        /// `stack` or `resource`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Every registration problem of a program, in the order found.
pub type RegistrationErrors = ErrorList<RegistrationError>;

static NEXT_STACK: AtomicU64 = AtomicU64::new(1);

/// The builder a stack program registers its resources with.
#[derive(Debug)]
pub struct Stack {
    id: StackId,
    name: Arc<str>,
    nodes: Vec<Registration>,
    by_name: HashMap<Arc<str>, usize>,
    errors: Vec<RegistrationError>,
    outputs: BTreeMap<String, Output<Value>>,
    /// What [`Stack::with_prefix`] puts before every name registered now.
    prefix: String,
    groups: Vec<RollingGroup>,
}

impl Stack {
    /// A new, empty stack.
    pub fn new(name: impl Into<String>) -> Self {
        let name: String = name.into();
        let mut errors = Vec::new();
        if let Some(reason) = invalid_stack_name(&name) {
            errors.push(RegistrationError::InvalidName {
                what: "stack",
                name: name.clone(),
                reason,
            });
        }
        Self {
            id: StackId(NEXT_STACK.fetch_add(1, Ordering::Relaxed)),
            name: Arc::from(name),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            errors,
            outputs: BTreeMap::new(),
            prefix: String::new(),
            groups: Vec::new(),
        }
    }

    /// The stack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `register` with `prefix` before every resource, data source and output name it
    /// registers (prefixes nest): how a component is registered twice in one stack, or beside
    /// resources of the stack's own that have the same names.
    ///
    /// ```
    /// # use iac_core::{Inputs, ResourceOptions, Stack};
    /// let mut stack = Stack::new("dev");
    /// let component = |stack: &mut Stack| {
    ///     let vpc = stack.register("aws:ec2:Vpc", "vpc", Inputs::new(), ResourceOptions::new());
    ///     // Names that must be unique outside the stack too (an AWS key pair's, a role's).
    ///     let key_name = format!("{}-{}", stack.name(), stack.qualified("operator"));
    ///     (vpc, key_name)
    /// };
    /// let (blue, blue_key) = stack.with_prefix("blue-", component);
    /// let (green, _) = stack.with_prefix("green-", component);
    /// assert_eq!((blue.name(), green.name()), ("blue-vpc", "green-vpc"));
    /// assert_eq!(blue_key, "dev-blue-operator");
    /// assert!(stack.build().is_ok());
    /// ```
    ///
    /// [`ResourceOptions::depends_on_name`] takes a name as the stack has it: with the prefix.
    pub fn with_prefix<R>(&mut self, prefix: &str, register: impl FnOnce(&mut Self) -> R) -> R {
        let outer = self.prefix.len();
        self.prefix.push_str(prefix);
        let registered = register(self);
        self.prefix.truncate(outer);
        registered
    }

    /// `name` as registered now: with the prefixes of the [`Stack::with_prefix`] calls
    /// running.
    pub fn qualified(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Registers a typed resource with default options.
    pub fn resource<K: ResourceType>(&mut self, name: &str, args: K::Args) -> K {
        self.resource_with::<K>(name, args, ResourceOptions::default())
    }

    /// Registers a typed resource with options.
    pub fn resource_with<K: ResourceType>(
        &mut self,
        name: &str,
        args: K::Args,
        options: ResourceOptions,
    ) -> K {
        let mut options = options;
        options
            .additional_secret_outputs
            .extend(K::SECRET_OUTPUTS.iter().map(|s| (*s).to_owned()));
        K::from_resource(self.add(
            NodeKind::Resource,
            K::TYPE,
            name,
            args.into_inputs(),
            options,
        ))
    }

    /// Registers a typed data source: read through its provider during preview.
    pub fn data_source<K: ResourceType>(&mut self, name: &str, args: K::Args) -> K {
        K::from_resource(self.add(
            NodeKind::DataSource,
            K::TYPE,
            name,
            args.into_inputs(),
            ResourceOptions::default(),
        ))
    }

    /// Registers a resource by type token, without a compile-time type.
    pub fn register(
        &mut self,
        type_token: &str,
        name: &str,
        inputs: Inputs,
        options: ResourceOptions,
    ) -> Resource {
        self.add(NodeKind::Resource, type_token, name, inputs, options)
    }

    /// Registers a data source by type token.
    pub fn read(&mut self, type_token: &str, name: &str, inputs: Inputs) -> Resource {
        self.add(
            NodeKind::DataSource,
            type_token,
            name,
            inputs,
            ResourceOptions::default(),
        )
    }

    /// Declares a rolling group: its members that an apply updates or replaces change one
    /// at a time, in the group's order, each behind its gate (see [`RollingGroup`]).
    pub fn rolling_group(&mut self, group: RollingGroup) {
        self.groups.push(RollingGroup {
            name: self.qualified(&group.name),
            ..group
        });
    }

    /// Exports a stack output, recorded in state after apply.
    pub fn export(&mut self, key: &str, value: impl IntoInput) {
        self.outputs.insert(self.qualified(key), value.into_input());
    }

    pub(crate) fn add(
        &mut self,
        kind: NodeKind,
        type_token: &str,
        name: &str,
        inputs: Inputs,
        options: ResourceOptions,
    ) -> Resource {
        let unnamed = name.is_empty();
        let name: Arc<str> = Arc::from(self.qualified(name));
        if unnamed || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.errors.push(RegistrationError::InvalidName {
                what: "resource",
                name: name.to_string(),
                reason: "use a non-empty name without spaces or control characters",
            });
        }
        let secret_outputs: BTreeSet<String> = options
            .additional_secret_outputs
            .iter()
            .cloned()
            .chain(
                inputs
                    .0
                    .iter()
                    .filter(|(_, o)| o.is_secret())
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        let secret_outputs = Arc::new(secret_outputs);
        let first = self.by_name.get(&name).copied();
        let index = first.unwrap_or(self.nodes.len());
        if let Some(first) = first {
            self.errors.push(RegistrationError::DuplicateName {
                stack: self.name.to_string(),
                name: name.to_string(),
                first_type: self.nodes[first].type_token.clone(),
                second_type: type_token.to_owned(),
            });
        } else {
            self.by_name.insert(Arc::clone(&name), self.nodes.len());
            self.nodes.push(Registration {
                name: Arc::clone(&name),
                type_token: type_token.to_owned(),
                kind,
                inputs: inputs.0,
                options,
                secret_outputs: Arc::clone(&secret_outputs),
            });
        }
        Resource {
            reference: ResourceRef {
                stack: self.id,
                stack_name: Arc::clone(&self.name),
                name,
                index,
            },
            secret_outputs,
        }
    }

    /// Validates the whole graph and returns the program, or every problem found.
    pub fn build(mut self) -> Result<Program, RegistrationErrors> {
        let declared = std::mem::take(&mut self.groups);
        let mut errors = std::mem::take(&mut self.errors);
        let stack = self.name.to_string();
        let deps = self.dependencies(&mut errors);
        self.check_aliases(&mut errors);
        for (key, output) in &self.outputs {
            for r in output.dependencies().filter(|r| r.stack != self.id) {
                errors.push(self.foreign(&format!("output {key}"), r));
            }
        }
        let names: Vec<&str> = self.nodes.iter().map(|n| &*n.name).collect();
        for cycle in find_cycles(&deps) {
            errors.push(RegistrationError::Cycle {
                stack: stack.clone(),
                cycle: cycle.iter().map(|&i| names[i].to_owned()).collect(),
            });
        }
        let registered = (self.id, &self.nodes[..], &self.by_name);
        let groups = checked_groups(declared, registered, &stack, &deps, &mut errors);
        if !errors.is_empty() {
            return Err(ErrorList(errors));
        }
        let order = topological_order(&deps);
        let nodes = self
            .nodes
            .into_iter()
            .zip(deps)
            .map(|(registration, deps)| ProgramNode { registration, deps })
            .collect();
        Ok(Program {
            stack,
            nodes,
            order,
            index: self.by_name,
            outputs: self.outputs,
            groups,
        })
    }

    /// Each node's dependencies: the resources its inputs read, its `depends_on` and its
    /// foreign dependencies (a reference into another stack, or an unknown name, is an error).
    fn dependencies(&self, errors: &mut Vec<RegistrationError>) -> Vec<BTreeSet<usize>> {
        let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let refs = node
                .inputs
                .values()
                .flat_map(|o| o.dependencies())
                .chain(node.options.foreign_dependencies.iter());
            for r in refs {
                if r.stack != self.id {
                    errors.push(self.foreign(&node.name, r));
                } else if let Some(&d) = self.by_name.get(&r.name) {
                    deps[i].insert(d);
                }
            }
            for name in &node.options.depends_on {
                match self.by_name.get(name.as_str()) {
                    Some(&d) => {
                        deps[i].insert(d);
                    }
                    None => errors.push(RegistrationError::UnknownDependency {
                        stack: self.name.to_string(),
                        resource: node.name.to_string(),
                        missing: name.clone(),
                    }),
                }
            }
        }
        deps
    }

    /// A reference from `holder` into another stack.
    fn foreign(&self, holder: &str, r: &ResourceRef) -> RegistrationError {
        RegistrationError::ForeignReference {
            stack: self.name.to_string(),
            resource: holder.to_owned(),
            other_stack: r.stack_name().to_owned(),
            referenced: r.name().to_owned(),
        }
    }

    /// Refuses an alias that is a registered name or another resource's alias too.
    fn check_aliases(&self, errors: &mut Vec<RegistrationError>) {
        let mut aliased: HashMap<&str, &str> = HashMap::new();
        for node in &self.nodes {
            for alias in &node.options.aliases {
                let reason = if self.by_name.contains_key(alias.as_str()) {
                    Some("a registered resource has that name".to_owned())
                } else {
                    aliased
                        .insert(alias, &node.name)
                        .map(|other| format!("so has `{other}`"))
                };
                if let Some(reason) = reason {
                    errors.push(RegistrationError::InvalidAlias {
                        stack: self.name.to_string(),
                        resource: node.name.to_string(),
                        alias: alias.clone(),
                        reason,
                    });
                }
            }
        }
    }
}

/// The rolling groups of `registered` with their members found, or why one cannot roll: a
/// member of another stack or a data source, one in two groups, an order that puts a member
/// before one it depends on, or a gate reading what depends on a member.
fn checked_groups(
    declared: Vec<RollingGroup>,
    (id, nodes, by_name): (StackId, &[Registration], &HashMap<Arc<str>, usize>),
    stack: &str,
    deps: &[BTreeSet<usize>],
    errors: &mut Vec<RegistrationError>,
) -> Vec<ProgramGroup> {
    let mut member_of: HashMap<usize, String> = HashMap::new();
    let mut groups = Vec::new();
    for group in declared {
        let mut refuse = |reason: String| {
            errors.push(RegistrationError::RollingGroup {
                stack: stack.to_owned(),
                group: group.name.clone(),
                reason,
            });
        };
        let mut members = Vec::new();
        for member in &group.members {
            let name = member.name();
            if member.stack != id {
                refuse(format!(
                    "`{name}` is a resource of stack `{}`: a group rolls its own stack's resources",
                    member.stack_name()
                ));
                continue;
            }
            match by_name.get(name) {
                None => refuse(format!(
                    "`{name}` is not a registered resource: add it to the group after registering it"
                )),
                Some(&m) if nodes[m].kind == NodeKind::DataSource => {
                    refuse(format!(
                        "`{name}` is a data source, which never changes: only resources roll"
                    ));
                }
                Some(&m) => match member_of.insert(m, group.name.clone()) {
                    Some(other) => refuse(format!(
                        "`{name}` is a member of `{other}` too: a resource rolls in one group"
                    )),
                    None => members.push(m),
                },
            }
        }
        for (i, &later) in members.iter().enumerate() {
            for &earlier in &members[..i] {
                if depends_on(|n| &deps[n], earlier, later) {
                    refuse(format!(
                        "`{}` rolls before `{}`, which it depends on: list `{}` first",
                        nodes[earlier].name, nodes[later].name, nodes[later].name
                    ));
                }
            }
        }
        let input_deps = gate_reads(&group, (id, nodes, by_name), deps, &members, &mut refuse);
        let completions = completions(&group, (id, nodes, by_name), deps, &members, &mut refuse);
        groups.push(ProgramGroup {
            name: group.name,
            members,
            completions,
            gate: group.gate,
            input: group.input,
            input_deps,
            timeout: group.timeout,
            interval: group.interval,
            updates_only: group.updates_only,
        });
    }
    groups
}

/// The nodes the gate of `group` reads (its input's resources and those it `reads`), each
/// refused through `refuse` when it is not registered or depends on one of `members`.
fn gate_reads(
    group: &RollingGroup,
    (id, nodes, by_name): (StackId, &[Registration], &HashMap<Arc<str>, usize>),
    deps: &[BTreeSet<usize>],
    members: &[usize],
    refuse: &mut impl FnMut(String),
) -> Vec<usize> {
    let mut input_deps = Vec::new();
    let ours = |read: &&ResourceRef| read.stack == id;
    for read in group.input.dependencies().chain(&group.reads).filter(ours) {
        let Some(&r) = by_name.get(&read.name) else {
            refuse(format!(
                "its gate reads `{}`, which is not a registered resource: register it first",
                read.name()
            ));
            continue;
        };
        if let Some(&m) = members
            .iter()
            .find(|&&m| m == r || depends_on(|n| &deps[n], r, m))
        {
            refuse(format!(
                "its gate reads `{}`, which depends on its member `{}`: the roll would wait \
                 for itself; let `{}` start without `{}`",
                nodes[r].name, nodes[m].name, nodes[r].name, nodes[m].name
            ));
        }
        input_deps.push(r);
    }
    input_deps
}

/// The node completing each member of `group` ([`RollingGroup::completed_by`]), by the
/// member's node; each refused through `refuse` when it has no member, is not registered, is
/// a member itself or completes another, does not depend on its member, or depends on a
/// member that rolls after its own (the roll would wait for itself).
fn completions(
    group: &RollingGroup,
    (id, nodes, by_name): (StackId, &[Registration], &HashMap<Arc<str>, usize>),
    deps: &[BTreeSet<usize>],
    members: &[usize],
    refuse: &mut impl FnMut(String),
) -> HashMap<usize, usize> {
    let mut completions: HashMap<usize, usize> = HashMap::new();
    let found = |reference: &ResourceRef| {
        by_name
            .get(&reference.name)
            .copied()
            .filter(|_| reference.stack == id)
    };
    for (member, step) in &group.completions {
        let Some(member) = member else {
            refuse(format!(
                "`{}` completes no member: call completed_by after the member it completes",
                step.name()
            ));
            continue;
        };
        let (Some(m), Some(c)) = (found(member), found(step)) else {
            refuse(format!(
                "`{}` completes `{}`, but it is not a registered resource of this stack: \
                 register it first",
                step.name(),
                member.name()
            ));
            continue;
        };
        let (member_name, step_name) = (&nodes[m].name, &nodes[c].name);
        let Some(position) = members.iter().position(|&n| n == m) else {
            continue; // refused as a member already
        };
        if members.contains(&c) || completions.values().any(|&other| other == c) {
            refuse(format!(
                "`{step_name}` completes `{member_name}` but is a member or completes another: \
                 a resource completes one member"
            ));
        } else if !depends_on(|n| &deps[n], c, m) {
            refuse(format!(
                "`{step_name}` completes `{member_name}` but does not depend on it: make it \
                 read one of `{member_name}`'s outputs or depend on it"
            ));
        } else if let Some(&later) = members[position + 1..]
            .iter()
            .find(|&&later| depends_on(|n| &deps[n], c, later))
        {
            refuse(format!(
                "`{step_name}` completes `{member_name}` but depends on `{}`, which rolls after \
                 it: the roll would wait for itself; let `{step_name}` read only what is known \
                 before `{}` changes",
                nodes[later].name, nodes[later].name
            ));
        } else if completions.insert(m, c).is_some() {
            refuse(format!(
                "`{member_name}` is completed by two resources: name one, which depends on the other"
            ));
        }
    }
    completions
}

/// Whether node `from` depends on node `to`, directly or through others.
pub(crate) fn depends_on<'a>(
    deps: impl Fn(usize) -> &'a BTreeSet<usize>,
    from: usize,
    to: usize,
) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for &d in deps(n) {
            if d == to {
                return true;
            }
            if seen.insert(d) {
                stack.push(d);
            }
        }
    }
    false
}

fn invalid_stack_name(name: &str) -> Option<&'static str> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    (!ok).then_some("use 1-100 characters of [A-Za-z0-9._-], not starting with `.`")
}

/// Every cycle (one per strongly connected component), each starting at its earliest
/// registered member and ending where it started.
fn find_cycles(deps: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(deps.len(), deps.len());
    let ids: Vec<NodeIndex> = (0..deps.len()).map(|i| graph.add_node(i)).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            graph.add_edge(ids[i], ids[d], ());
        }
    }
    let mut cycles: Vec<Vec<usize>> = tarjan_scc(&graph)
        .into_iter()
        .filter_map(|scc| {
            let members: BTreeSet<usize> = scc.iter().map(|n| graph[*n]).collect();
            let start = *members.first()?;
            if members.len() == 1 && !deps[start].contains(&start) {
                return None;
            }
            shortest_cycle(deps, &members, start)
        })
        .collect();
    cycles.sort();
    cycles
}

fn shortest_cycle(
    deps: &[BTreeSet<usize>],
    members: &BTreeSet<usize>,
    start: usize,
) -> Option<Vec<usize>> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for &d in deps[n].iter().filter(|d| members.contains(d)) {
            if d == start {
                let mut back = Vec::new();
                let mut at = n;
                while at != start {
                    back.push(at);
                    at = *parent.get(&at)?;
                }
                back.reverse();
                let mut path = vec![start];
                path.extend(back);
                path.push(start);
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(d) {
                e.insert(n);
                queue.push_back(d);
            }
        }
    }
    None
}

/// Kahn's algorithm, taking ready nodes in registration order, so the order is stable.
fn topological_order(deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..deps.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for &m in &dependents[n] {
            waiting[m] -= 1;
            if waiting[m] == 0 {
                ready.push(Reverse(m));
            }
        }
    }
    order
}

/// A validated program: every resource, its dependencies and a stable topological order.
#[derive(Debug)]
pub struct Program {
    pub(crate) stack: String,
    pub(crate) nodes: Vec<ProgramNode>,
    pub(crate) order: Vec<usize>,
    pub(crate) index: HashMap<Arc<str>, usize>,
    pub(crate) outputs: BTreeMap<String, Output<Value>>,
    pub(crate) groups: Vec<ProgramGroup>,
}

#[derive(Debug)]
pub(crate) struct ProgramNode {
    pub(crate) registration: Registration,
    pub(crate) deps: BTreeSet<usize>,
}

impl Program {
    /// A program with no resources: planning it against a stack's state destroys the stack.
    pub fn empty(stack: &str) -> Result<Self, RegistrationErrors> {
        Stack::new(stack).build()
    }

    /// The stack's name.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The node `resource` is: at its registration's place (the same name, the very same
    /// string when it was registered in this program's stack), else looked up by name.
    pub(crate) fn node_of(&self, resource: &ResourceRef) -> Option<usize> {
        match self.nodes.get(resource.index) {
            Some(node) if Arc::ptr_eq(&node.registration.name, &resource.name) => {
                Some(resource.index)
            }
            _ => self.index.get(resource.name()).copied(),
        }
    }

    /// Whether node `from` depends on node `to`, directly or through others.
    pub(crate) fn depends_on(&self, from: usize, to: usize) -> bool {
        depends_on(|n| &self.nodes[n].deps, from, to)
    }

    /// How many resources and data sources are registered.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Resource names in the order the engine walks them (dependencies first).
    pub fn topological_names(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .map(|&i| &*self.nodes[i].registration.name)
    }
}
