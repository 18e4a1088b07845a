//! Evaluating a program's inputs against what is known: recorded outputs, data sources read,
//! outputs apply has produced so far. The planner evaluates with what is known before apply
//! (the rest is "known after apply", sketched where it can be); apply evaluates again as
//! outputs become known. Also the record a program node leaves in state.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::output::{EvalError, Resolve, ResourceRef};
use crate::property::{Properties, PropertyMap, PropertyValue};
use crate::provider::{InputReference, ReadRequest, References};
use crate::record::SKETCH_MARK;
use crate::stack::{Program, Registration};
use crate::state::ResourceState;

/// Resolution state of one program node's outputs.
#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Known {
        id: String,
        outputs: Outputs,
    },
    Partial {
        id: String,
        outputs: Outputs,
        unknown: BTreeSet<String>,
    },
    Unknown,
}

/// A node's outputs as references read them, in key order. A sorted slice: every node of a
/// plan or an apply holds one, and a tree would allocate a whole node for a handful.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outputs(Box<[(String, Value)]>);

impl Outputs {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        let at = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    pub(crate) fn to_map(&self) -> PropertyMap {
        self.0.iter().cloned().collect()
    }
}

/// A map's entries are in key order already.
impl From<&PropertyMap> for Outputs {
    fn from(map: &PropertyMap) -> Self {
        Self(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl From<PropertyMap> for Outputs {
    fn from(map: PropertyMap) -> Self {
        Self(map.into_iter().collect())
    }
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
        let Some(i) = self.program.node_of(resource) else {
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
    pub(crate) references: References,
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
    let mut inputs = Properties::with_capacity(registration.inputs.len());
    let mut sketches = BTreeMap::new();
    for (key, output) in registration.inputs.iter() {
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

/// The read of data source `registration` of `stack` with its `inputs` (known): what the
/// planner asks at preview and apply asks when the inputs were known only then.
pub(crate) fn data_source_read<'a>(
    stack: &'a str,
    registration: &'a Registration,
    inputs: &'a PropertyMap,
) -> ReadRequest<'a> {
    ReadRequest {
        stack,
        type_token: &registration.type_token,
        name: &registration.name,
        id: None,
        inputs,
        outputs: None,
        created_since: None,
    }
}
