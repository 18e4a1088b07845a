//! The planner: one program node at a time, in topological order, then the checks that need
//! the whole program (the providers' relation checks, the deletes) and the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::deletes::{plan_deletes, propagate_delete_before_replace, untargeted_dependents};
use super::{Plan, PlanError, PlanErrors, PlanOptions, PlannedStep, Step};
use crate::change::{self, Change};
use crate::errors::ErrorList;
use crate::evaluate::{
    Evaluated, NodeResolver, NodeValue, apply_ignore_changes, data_source_read, dependency_names,
    evaluate,
};
use crate::property::{Properties, PropertyValue};
use crate::provider::{CheckRequest, Provider, Providers, References};
use crate::record::{
    BaseState, Operation, PLAN_VERSION, PlanRecord, PropertyDiff, Shown, StepRecord, interrupted,
};
use crate::stack::{NodeKind, Program};
use crate::state::{Checkpoint, ResourceState};
use crate::target::{self, RecordedDependents};

/// A resource's checked inputs and references, for the providers' relation checks.
type Checked = (Properties, References);

/// What the planner has found so far, node by node (indexed like `program.nodes`).
pub(super) struct Planner<'p> {
    program: &'p Program,
    state: Option<&'p Checkpoint>,
    options: &'p PlanOptions,
    errors: Vec<PlanError>,
    values: Vec<NodeValue>,
    steps: Vec<Option<PlannedStep>>,
    /// The nodes with a step, in the order they were planned (the program's): a targeted
    /// plan's are few, and the list of every node's step is large to read.
    planned: Vec<usize>,
    /// How many planned nodes have a record (each a different one): when it is every record
    /// of the stack, nothing recorded has left the program.
    recorded: usize,
    checked: Vec<Option<Checked>>,
    /// What a targeted plan covers (`None`: everything).
    reach: Option<BTreeSet<String>>,
    /// How many resources the targets leave untouched.
    untargeted: usize,
}

impl<'p> Planner<'p> {
    /// A planner of `program` against `state`, its reach worked out from the targets (an
    /// unknown target is an error, and the plan then covers nothing).
    pub(super) fn new(
        program: &'p Program,
        state: Option<&'p Checkpoint>,
        options: &'p PlanOptions,
        recorded_dependents: &RecordedDependents<'_>,
    ) -> Self {
        let (reach, errors) = if options.targets.is_all() {
            (None, Vec::new())
        } else {
            match target::reach(&options.targets, Some(program), state, recorded_dependents) {
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
        let n = program.nodes.len();
        Self {
            program,
            state,
            options,
            errors,
            values: vec![NodeValue::Unknown; n],
            steps: vec![None; n],
            planned: Vec::new(),
            recorded: 0,
            checked: vec![None; n],
            reach,
            untargeted: 0,
        }
    }

    /// Refuses each replacement asked for that cannot be made.
    pub(super) fn check_replacements(&mut self) {
        for name in &self.options.replace {
            let found = self
                .program
                .index
                .get(name.as_str())
                .map(|&i| &self.program.nodes[i].registration);
            let reason = match found {
                None => Some("the program has no resource of that name"),
                Some(reg) if reg.kind == NodeKind::DataSource => {
                    Some("it is a data source: it is read, not made")
                }
                Some(_) if self.state.and_then(|s| s.resources.live(name)).is_none() => {
                    Some("it is not made yet: the plan creates it")
                }
                Some(_) if !self.covers(name) => Some("it is not targeted: target it too"),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                self.errors.push(PlanError::CannotReplace {
                    resource: name.clone(),
                    reason,
                });
            }
        }
    }

    /// Plans every node the plan covers, dependencies first; counts the resources it leaves
    /// untouched.
    pub(super) async fn plan_program(&mut self, providers: &Providers) {
        let program = self.program;
        // What the stack outputs read of a resource left as recorded is what the state says
        // (what the targets need is covered, so nothing else reads it).
        let read_by_outputs: BTreeSet<&str> = if self.reach.is_some() {
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
            if self.covers(name) {
                self.plan_node(i, providers).await;
                continue;
            }
            if program.nodes[i].registration.kind == NodeKind::Resource {
                self.untargeted += 1;
            }
            if read_by_outputs.contains(&**name)
                && let Some(r) = self.state.and_then(|s| s.resources.live(name))
            {
                self.values[i] = NodeValue::Known {
                    id: r.id.clone(),
                    outputs: (&r.outputs).into(),
                };
            }
        }
    }

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

    /// Keeps the step planned for node `i`.
    fn set_step(
        &mut self,
        i: usize,
        record: StepRecord,
        old: Option<ResourceState>,
        refresh: bool,
    ) {
        if self.steps[i].is_none() {
            self.planned.push(i);
        }
        self.steps[i] = Some(PlannedStep {
            record,
            step: Step {
                node: Some(i),
                old,
                refresh_record: refresh,
            },
        });
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
        let old = self.state.and_then(|s| s.resource(&reg.name));
        self.recorded += usize::from(old.is_some());
        if reg.kind == NodeKind::DataSource {
            self.read_data_source(i, provider.as_ref(), &evaluated.inputs, old.cloned())
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
            let request = data_source_read(&self.program.stack, reg, &known);
            match provider.read(&request).await {
                Ok(Some(found)) => {
                    self.values[i] = NodeValue::Known {
                        id: found.id,
                        outputs: found.outputs.into(),
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
        let record = self.step_record(i, Operation::Read, Vec::new());
        self.set_step(i, record, old, false);
    }

    /// Checks a resource's inputs and plans its create, or its change against its record.
    fn plan_resource(
        &mut self,
        i: usize,
        provider: &dyn Provider,
        evaluated: Evaluated,
        old: Option<&ResourceState>,
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
        let shower = Shower {
            secrets: &secrets,
            sketches: &sketches,
        };
        match old {
            None => {
                let diff = inputs.iter().map(|(k, v)| shower.added(k, v)).collect();
                let record = self.step_record(i, Operation::Create, diff);
                self.set_step(i, record, None, false);
            }
            Some(old) => {
                apply_ignore_changes(&mut inputs, &reg.options.ignore_changes, &old.inputs);
                self.plan_change(i, provider, &inputs, old, &shower);
            }
        }
        self.checked[i] = Some((inputs, references));
    }

    /// Classifies a recorded resource's change and plans its step (a protected resource that
    /// would be replaced is an error).
    fn plan_change(
        &mut self,
        i: usize,
        provider: &dyn Provider,
        inputs: &Properties,
        old: &ResourceState,
        shower: &Shower<'_>,
    ) {
        let reg = &self.program.nodes[i].registration;
        let forced = self.options.replace.contains(&*reg.name);
        let change = match change::classify(provider, reg, old, inputs, forced) {
            Ok(change) => change,
            Err(error) => {
                self.errors.push(PlanError::Provider {
                    resource: reg.name.to_string(),
                    action: "diff",
                    error,
                });
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
            .map(|c| shower.changed(&c.key, c.replace, old, inputs))
            .collect();
        self.values[i] = planned_value(op, old, &change);
        let refresh_record = op == Operation::Same
            && change::record_is_stale(
                old,
                reg,
                &dependency_names(self.program, i),
                shower.secrets,
            );
        let mut record = self.step_record(i, op, diff);
        record.delete_before_replace = change.delete_before_replace;
        // An unchanged resource needs its record only if the record itself must be rewritten.
        let keep_old = op != Operation::Same || refresh_record;
        self.set_step(i, record, keep_old.then(|| old.clone()), refresh_record);
    }

    /// Adds the relation checks, delete-first propagation and the deletes, then the plan.
    pub(super) fn finish(
        mut self,
        providers: &Providers,
        recorded_dependents: &RecordedDependents<'_>,
    ) -> Result<Plan, PlanErrors> {
        let program = self.program;
        self.errors
            .extend(check_related(program, providers, &self.checked));
        propagate_delete_before_replace(program, &mut self.steps, &self.planned);
        let mut ordered: Vec<PlannedStep> = self
            .planned
            .iter()
            .filter_map(|&i| self.steps[i].take())
            .collect();
        self.untargeted += self.untargeted_records();
        let reach = self.reach.as_ref();
        let covers = |name: &str| target::covers(reach, name);
        // Every record planned (no targets, none left over): there is nothing to delete.
        let all_planned = reach.is_none()
            && self
                .state
                .is_none_or(|s| s.resources.len() == self.recorded);
        if !all_planned {
            ordered.extend(plan_deletes(program, self.state, &mut self.errors, covers));
        }
        if reach.is_some() {
            let errors = untargeted_dependents(&ordered, recorded_dependents, covers);
            self.errors.extend(errors);
        }
        if !self.errors.is_empty() {
            return Err(ErrorList(self.errors));
        }
        let (records, steps): (Vec<StepRecord>, Vec<Step>) =
            ordered.into_iter().map(|p| (p.record, p.step)).unzip();
        Ok(Plan {
            record: PlanRecord {
                version: PLAN_VERSION,
                stack: program.stack.clone(),
                base: BaseState::of(self.state),
                interrupted: self.state.map(interrupted).unwrap_or_default(),
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

    /// How many recorded resources that left the program a targeted plan leaves untouched.
    fn untargeted_records(&self) -> usize {
        let (Some(reach), Some(state)) = (&self.reach, self.state) else {
            return 0;
        };
        let mut left: Vec<&str> = state
            .resources
            .iter()
            .filter(|r| r.kind == NodeKind::Resource)
            .map(|r| r.name.as_str())
            .filter(|n| !self.program.index.contains_key(*n) && !reach.contains(*n))
            .collect();
        left.dedup();
        left.len()
    }
}

/// What a resource's outputs are known to be once its step is planned: unchanged, partly
/// known (an update), or known only after apply.
fn planned_value(op: Operation, old: &ResourceState, change: &Change) -> NodeValue {
    match op {
        Operation::Same => NodeValue::Known {
            id: old.id.clone(),
            outputs: (&old.outputs).into(),
        },
        // Changed inputs and every computed output (one that is not an input) may change
        // with an update (a restarted instance gets a new public IP); the id does not.
        Operation::Update => NodeValue::Partial {
            id: old.id.clone(),
            outputs: (&old.outputs).into(),
            unknown: change
                .changes
                .iter()
                .map(|c| c.key.clone())
                .chain(
                    old.outputs
                        .keys()
                        .filter(|k| !old.inputs.contains_key(k))
                        .cloned(),
                )
                .collect(),
        },
        _ => NodeValue::Unknown,
    }
}

/// How a resource's property diffs show its values: secrets hidden, unknown values sketched
/// where a sketch was made.
struct Shower<'a> {
    secrets: &'a BTreeSet<String>,
    sketches: &'a BTreeMap<String, Value>,
}

impl Shower<'_> {
    fn secret(&self, key: &str) -> bool {
        self.secrets.contains(key)
    }

    fn planned(&self, key: &str, value: &PropertyValue) -> Shown {
        match value {
            PropertyValue::Known(v) => shown(v, self.secret(key)),
            PropertyValue::Unknown => Shown::Unknown,
        }
    }

    fn sketch(&self, key: &str, value: Option<&PropertyValue>) -> Option<Value> {
        match value {
            Some(PropertyValue::Unknown) if !self.secret(key) => self.sketches.get(key).cloned(),
            _ => None,
        }
    }

    /// The diff of an input of a resource the plan creates.
    fn added(&self, key: &str, value: &PropertyValue) -> PropertyDiff {
        PropertyDiff {
            key: key.to_owned(),
            old: None,
            new: Some(self.planned(key, value)),
            replace: false,
            sketch: self.sketch(key, Some(value)),
        }
    }

    /// The diff of a changed input of a recorded resource.
    fn changed(
        &self,
        key: &str,
        replace: bool,
        old: &ResourceState,
        inputs: &Properties,
    ) -> PropertyDiff {
        PropertyDiff {
            key: key.to_owned(),
            old: old
                .inputs
                .get(key)
                .map(|v| shown(v, old.secrets.contains(key))),
            new: inputs.get(key).map(|v| self.planned(key, v)),
            replace,
            sketch: self.sketch(key, inputs.get(key)),
        }
    }
}

fn shown(value: &Value, secret: bool) -> Shown {
    if secret {
        Shown::Secret
    } else {
        Shown::Value(value.clone())
    }
}

/// Asks each provider, once, to check the relations between all the resources it handles.
fn check_related(
    program: &Program,
    providers: &Providers,
    checked: &[Option<Checked>],
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
