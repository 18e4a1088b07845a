//! Refresh: what the providers report about each recorded resource, reconciled with the
//! state. Pure functions decide, for a pending operation of an interrupted run or for a
//! recorded resource, the mutation that brings the state in line and the drift to report;
//! [`Engine::refresh`](crate::Engine::refresh) reads, seals and commits.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::property::PropertyMap;
use crate::provider::ReadResponse;
use crate::record::{PropertyDiff, Shown};
use crate::stack::NodeKind;
use crate::state::{Mutation, PendingKind, PendingOperation, ResourceState};

/// What a refresh found for one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// The resource no longer exists; it was removed from state.
    Deleted,
    /// Its inputs differ from the state: the next apply brings them back to the program.
    Changed {
        /// The differences (inputs and outputs).
        diff: Vec<PropertyDiff>,
    },
    /// Only computed outputs changed (a new public IP after an Elastic IP was attached): the
    /// state now has them; nothing needs repair.
    OutputsChanged {
        /// The differences.
        diff: Vec<PropertyDiff>,
    },
    /// An interrupted create had made the resource; it is now recorded.
    Adopted,
    /// An interrupted create had not made the resource; nothing to record.
    NotCreated,
    /// An interrupted update or delete was settled from what the provider reports.
    Settled,
}

/// One refresh finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftRecord {
    /// The resource.
    pub name: String,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// What was found.
    #[serde(flatten)]
    pub drift: Drift,
}

/// A resource whose read failed; it is left as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadFailure {
    /// The resource.
    pub name: String,
    /// What the provider said.
    pub error: String,
}

/// The result of a refresh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshReport {
    /// The stack.
    pub stack: String,
    /// Every resource that differed.
    pub drift: Vec<DriftRecord>,
    /// Resources that matched the state.
    pub unchanged: usize,
    /// Resources whose read failed (left as recorded).
    pub errors: Vec<ReadFailure>,
    /// Resources a targeted refresh did not read.
    #[serde(skip_serializing_if = "crate::record::is_zero")]
    pub untargeted: usize,
}

/// A line per resource that differed, then `Refreshed stack dev: 1 changed, 40 unchanged, 0
/// unreadable` (after a targeted refresh `…, 3 not targeted`), then a line per read that failed.
impl fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for drift in &self.drift {
            writeln!(f, "{drift}")?;
        }
        write!(
            f,
            "Refreshed stack {}: {} changed, {} unchanged, {} unreadable",
            self.stack,
            self.drift.len(),
            self.unchanged,
            self.errors.len()
        )?;
        if self.untargeted > 0 {
            write!(f, ", {} not targeted", self.untargeted)?;
        }
        for failure in &self.errors {
            write!(f, "\n  ! {}: {}", failure.name, failure.error)?;
        }
        Ok(())
    }
}

impl RefreshReport {
    /// A report of nothing read yet.
    pub(crate) fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            drift: Vec::new(),
            unchanged: 0,
            errors: Vec::new(),
            untargeted: 0,
        }
    }

    /// Adds what reading one resource (or pending operation) found: a failed read, nothing
    /// changed, or a finding and the mutation that records it (added to `mutations`).
    pub(crate) fn add(
        &mut self,
        name: &str,
        type_token: &str,
        read: Result<Option<Reconciled>, String>,
        mutations: &mut Vec<Mutation>,
    ) {
        match read {
            Err(error) => self.errors.push(ReadFailure {
                name: name.to_owned(),
                error,
            }),
            Ok(None) => self.unchanged += 1,
            Ok(Some(Reconciled { mutation, drift })) => {
                mutations.push(mutation);
                self.drift.push(DriftRecord {
                    name: name.to_owned(),
                    type_token: type_token.to_owned(),
                    drift,
                });
            }
        }
    }
}

/// The preview's style: `~ name (type): key: old => new`, one line per property.
impl fmt::Display for DriftRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (symbol, what) = match &self.drift {
            Drift::Deleted => ("-", "deleted outside the program; removed from state"),
            Drift::Changed { .. } => ("~", "changed outside the program; apply restores it"),
            Drift::OutputsChanged { .. } => ("~", "outputs changed; recorded"),
            Drift::Adopted => (
                "+",
                "made by a create whose outcome was unknown; now recorded",
            ),
            Drift::NotCreated => (" ", "a create whose outcome was unknown had not made it"),
            Drift::Settled => ("~", "an interrupted operation was settled"),
        };
        write!(f, "{symbol} {} ({}): {what}", self.name, self.type_token)?;
        if let Drift::Changed { diff } | Drift::OutputsChanged { diff } = &self.drift {
            for d in diff {
                let show =
                    |v: &Option<Shown>| v.as_ref().map_or("null".to_owned(), Shown::to_string);
                write!(f, "\n    {}: {} => {}", d.key, show(&d.old), show(&d.new))?;
            }
        }
        Ok(())
    }
}

/// A state change and the finding that explains it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reconciled {
    /// Records in it are not sealed yet.
    pub(crate) mutation: Mutation,
    pub(crate) drift: Drift,
}

/// Settles a pending operation of an interrupted run from what the provider reports now
/// (`found`) and the record the operation was about, if any.
pub(crate) fn reconcile_pending(
    pending: &PendingOperation,
    found: Option<&ReadResponse>,
    existing: Option<&ResourceState>,
) -> Reconciled {
    let end = Some(pending.op_id);
    let (mutation, drift) = match (pending.kind, found, existing) {
        (PendingKind::Create, Some(f), _) => {
            let record = ResourceState {
                name: pending.name.clone(),
                type_token: pending.type_token.clone(),
                kind: NodeKind::Resource,
                id: f.id.clone(),
                inputs: f.inputs.clone().unwrap_or_else(|| pending.inputs.clone()),
                outputs: f.outputs.clone(),
                dependencies: pending.dependencies.clone(),
                secrets: pending.secrets.clone(),
                protect: false,
                delete_pending: false,
            };
            (
                Mutation::Put {
                    resource: record,
                    end,
                },
                Drift::Adopted,
            )
        }
        (PendingKind::Create, None, _) => (Mutation::End { op: pending.op_id }, Drift::NotCreated),
        (_, None, Some(r)) => (
            Mutation::Remove {
                name: r.name.clone(),
                id: r.id.clone(),
                end,
            },
            Drift::Deleted,
        ),
        (_, Some(f), Some(r)) => {
            let mut record = r.clone();
            if let Some(inputs) = &f.inputs {
                record.inputs = inputs.clone();
            }
            record.outputs = f.outputs.clone();
            (
                Mutation::Put {
                    resource: record,
                    end,
                },
                Drift::Settled,
            )
        }
        (_, _, None) => (Mutation::End { op: pending.op_id }, Drift::Settled),
    };
    Reconciled { mutation, drift }
}

/// Brings a recorded resource in line with what the provider reports; `None` when they match.
pub(crate) fn reconcile_resource(
    record: &ResourceState,
    found: Option<&ReadResponse>,
) -> Option<Reconciled> {
    let Some(found) = found else {
        return Some(Reconciled {
            mutation: Mutation::Remove {
                name: record.name.clone(),
                id: record.id.clone(),
                end: None,
            },
            drift: Drift::Deleted,
        });
    };
    let inputs = found
        .inputs
        .clone()
        .unwrap_or_else(|| record.inputs.clone());
    if inputs == record.inputs && found.outputs == record.outputs {
        return None;
    }
    let diff = drift_diff(record, &inputs, &found.outputs);
    let drift = if inputs == record.inputs {
        Drift::OutputsChanged { diff }
    } else {
        Drift::Changed { diff }
    };
    let mut updated = record.clone();
    updated.inputs = inputs;
    updated.outputs = found.outputs.clone();
    Some(Reconciled {
        mutation: Mutation::Put {
            resource: updated,
            end: None,
        },
        drift,
    })
}

/// Per property, old and new (inputs first; an output of the same key is not repeated),
/// secrets shown as `[secret]`.
fn drift_diff(
    old: &ResourceState,
    inputs: &PropertyMap,
    outputs: &PropertyMap,
) -> Vec<PropertyDiff> {
    let mut diff: Vec<PropertyDiff> = Vec::new();
    for (before, after) in [(&old.inputs, inputs), (&old.outputs, outputs)] {
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let (a, b) = (before.get(key), after.get(key));
            if a == b || diff.iter().any(|d| &d.key == key) {
                continue;
            }
            let show = |v: Option<&Value>| {
                v.map(|v| {
                    if old.secrets.contains(key) {
                        Shown::Secret
                    } else {
                        Shown::Value(v.clone())
                    }
                })
            };
            diff.push(PropertyDiff {
                key: key.clone(),
                old: show(a),
                new: show(b),
                replace: false,
                sketch: None,
            });
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(inputs: Value, outputs: Value) -> ResourceState {
        ResourceState {
            name: "vpc".into(),
            type_token: "test:Vpc".into(),
            kind: NodeKind::Resource,
            id: "vpc-1".into(),
            inputs: serde_json::from_value(inputs).unwrap_or_default(),
            outputs: serde_json::from_value(outputs).unwrap_or_default(),
            dependencies: vec!["net".into()],
            secrets: BTreeSet::from(["token".to_owned()]),
            protect: false,
            delete_pending: false,
        }
    }

    fn read(inputs: Option<Value>, outputs: Value) -> ReadResponse {
        ReadResponse {
            id: "vpc-1".into(),
            inputs: inputs.map(|i| serde_json::from_value(i).unwrap_or_default()),
            outputs: serde_json::from_value(outputs).unwrap_or_default(),
        }
    }

    fn pending(kind: PendingKind) -> PendingOperation {
        PendingOperation {
            op_id: 7,
            kind,
            name: "vpc".into(),
            type_token: "test:Vpc".into(),
            id: (kind != PendingKind::Create).then(|| "vpc-1".to_owned()),
            inputs: serde_json::from_value(json!({"cidr": "10.0.0.0/16"})).unwrap_or_default(),
            secrets: BTreeSet::new(),
            dependencies: vec!["net".into()],
            started: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_matching_resource_needs_nothing_and_a_gone_one_is_removed() {
        let r = record(
            json!({"cidr": "10.0.0.0/16"}),
            json!({"cidr": "10.0.0.0/16"}),
        );
        assert_eq!(
            reconcile_resource(&r, Some(&read(None, json!({"cidr": "10.0.0.0/16"})))),
            None
        );
        let gone = reconcile_resource(&r, None).unwrap();
        assert_eq!(gone.drift, Drift::Deleted);
        assert!(matches!(gone.mutation, Mutation::Remove { end: None, .. }));
    }

    #[test]
    fn changed_inputs_are_drift_and_changed_outputs_alone_are_not() {
        let r = record(
            json!({"cidr": "10.0.0.0/16", "token": "s3cret"}),
            json!({"ip": "1.1.1.1"}),
        );
        let changed = reconcile_resource(
            &r,
            Some(&read(
                Some(json!({"cidr": "10.9.0.0/16", "token": "other"})),
                json!({"ip": "1.1.1.1"}),
            )),
        )
        .unwrap();
        let Drift::Changed { diff } = &changed.drift else {
            panic!("{:?}", changed.drift);
        };
        let shown: Vec<(String, String)> = diff
            .iter()
            .map(|d| {
                (
                    d.key.clone(),
                    d.new.as_ref().map(Shown::to_string).unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("cidr".to_owned(), "\"10.9.0.0/16\"".to_owned()),
                ("token".to_owned(), "[secret]".to_owned())
            ]
        );
        let moved = reconcile_resource(&r, Some(&read(None, json!({"ip": "2.2.2.2"})))).unwrap();
        assert!(
            matches!(moved.drift, Drift::OutputsChanged { .. }),
            "{:?}",
            moved.drift
        );
        let Mutation::Put {
            resource,
            end: None,
        } = moved.mutation
        else {
            panic!("a put");
        };
        assert_eq!(resource.outputs["ip"], json!("2.2.2.2"));
    }

    #[test]
    fn an_interrupted_create_is_adopted_when_found_and_ended_when_not() {
        let adopted = reconcile_pending(
            &pending(PendingKind::Create),
            Some(&read(None, json!({"cidr": "10.0.0.0/16"}))),
            None,
        );
        assert_eq!(adopted.drift, Drift::Adopted);
        let Mutation::Put { resource, end } = adopted.mutation else {
            panic!("a put");
        };
        assert_eq!((resource.id.as_str(), end), ("vpc-1", Some(7)));
        assert_eq!(
            resource.inputs["cidr"],
            json!("10.0.0.0/16"),
            "the pending inputs"
        );
        assert_eq!(resource.dependencies, ["net"]);

        let not_created = reconcile_pending(&pending(PendingKind::Create), None, None);
        assert_eq!(
            (not_created.drift, not_created.mutation),
            (Drift::NotCreated, Mutation::End { op: 7 })
        );
    }

    #[test]
    fn an_interrupted_update_or_delete_is_settled_from_what_exists() {
        let r = record(json!({"cidr": "10.0.0.0/16"}), json!({}));
        let deleted = reconcile_pending(&pending(PendingKind::Delete), None, Some(&r));
        assert_eq!(deleted.drift, Drift::Deleted);
        assert!(matches!(
            deleted.mutation,
            Mutation::Remove { end: Some(7), .. }
        ));

        let updated = reconcile_pending(
            &pending(PendingKind::Update),
            Some(&read(Some(json!({"cidr": "10.1.0.0/16"})), json!({}))),
            Some(&r),
        );
        assert_eq!(updated.drift, Drift::Settled);
        let Mutation::Put {
            resource,
            end: Some(7),
        } = updated.mutation
        else {
            panic!("a put ending the operation");
        };
        assert_eq!(resource.inputs["cidr"], json!("10.1.0.0/16"));

        let unknown = reconcile_pending(&pending(PendingKind::Update), None, None);
        assert_eq!(
            (unknown.drift, unknown.mutation),
            (Drift::Settled, Mutation::End { op: 7 })
        );
    }

    #[test]
    fn findings_read_like_the_preview() {
        let record = DriftRecord {
            name: "node-profile".into(),
            type_token: "aws:iam:InstanceProfile".into(),
            drift: Drift::Changed {
                diff: vec![PropertyDiff {
                    key: "role".into(),
                    old: Some(Shown::Value(json!("dev-kafka-node"))),
                    new: None,
                    replace: false,
                    sketch: None,
                }],
            },
        };
        assert_eq!(
            record.to_string(),
            "~ node-profile (aws:iam:InstanceProfile): changed outside the program; apply restores it\n    role: \"dev-kafka-node\" => null"
        );
    }
}
