//! The change classifier plan and apply share: how one resource's inputs differ from its
//! record (type change, changed keys, the provider's diff, `replace_on_changes`), and whether
//! an unchanged resource's record is stale and must be rewritten (protection, dependencies or
//! secrecy changed). The planner calls it with what is known at preview, the executor again
//! with the inputs known at apply; there is no second copy of either decision.

use std::collections::BTreeSet;

use crate::property::Properties;
use crate::provider::{DiffRequest, PropertyChange, Provider, ProviderError};
use crate::record::Operation;
use crate::stack::Registration;
use crate::state::ResourceState;

/// How a resource's inputs differ from its record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Change {
    /// The changed inputs, each in place or forcing replacement.
    pub(crate) changes: Vec<PropertyChange>,
    /// A replacement must delete the old resource first.
    pub(crate) delete_before_replace: bool,
}

impl Change {
    /// `Same`, `Update` or `Replace`.
    pub(crate) fn operation(&self) -> Operation {
        if self.changes.is_empty() {
            Operation::Same
        } else if self.replaces() {
            Operation::Replace
        } else {
            Operation::Update
        }
    }

    /// Whether any change forces replacement.
    pub(crate) fn replaces(&self) -> bool {
        self.changes.iter().any(|c| c.replace)
    }

    /// The inputs whose change forces replacement.
    pub(crate) fn replacing_keys(&self) -> impl Iterator<Item = &str> {
        self.changes
            .iter()
            .filter(|c| c.replace)
            .map(|c| c.key.as_str())
    }
}

/// The key of the change a replacement that was asked for adds ([`PlanOptions::replace`]).
///
/// [`PlanOptions::replace`]: crate::PlanOptions::replace
pub const FORCED_REPLACEMENT: &str = "(replacement asked for)";

/// Classifies the change from `old` to `inputs` (with `ignore_changes` already applied). A
/// changed type token replaces the resource without asking the provider; unchanged inputs
/// need no provider call either. `forced`: a replacement was asked for whatever changed.
pub(crate) fn classify(
    provider: &dyn Provider,
    registration: &Registration,
    old: &ResourceState,
    inputs: &Properties,
    forced: bool,
) -> Result<Change, ProviderError> {
    let changed = inputs.changed_keys(&old.inputs);
    if old.type_token != registration.type_token {
        return Ok(Change {
            changes: changed
                .into_iter()
                .chain(["type".to_owned()])
                .map(|key| PropertyChange { key, replace: true })
                .collect(),
            delete_before_replace: registration.options.delete_before_replace,
        });
    }
    // Asked even when no input changed: a resource may change alone (a certificate that
    // entered its renewal window is replaced with no input changed).
    let response = provider.diff(&DiffRequest {
        type_token: &registration.type_token,
        name: &registration.name,
        id: &old.id,
        old_inputs: &old.inputs,
        old_outputs: &old.outputs,
        new_inputs: inputs,
    })?;
    let mut changes: Vec<PropertyChange> = response
        .changes
        .into_iter()
        .map(|mut change| {
            change.replace |= registration
                .options
                .replace_on_changes
                .contains(&change.key);
            change
        })
        .collect();
    // A replacement asked for with nothing else forcing one makes a copy with the same
    // inputs: whatever must be unique (a name, a rule's permission) would clash with the old
    // one, so the old one goes first.
    let forced_alone = forced && !changes.iter().any(|c| c.replace);
    if forced_alone {
        changes.push(PropertyChange {
            key: FORCED_REPLACEMENT.to_owned(),
            replace: true,
        });
    }
    let replaces = changes.iter().any(|c| c.replace);
    Ok(Change {
        changes,
        delete_before_replace: replaces
            && (forced_alone
                || registration.options.delete_before_replace
                || response.delete_before_replace),
    })
}

/// Whether the record of an unchanged resource must be rewritten: its protection, its
/// dependencies or which of its values are secret (`secrets`: the registration's
/// [`secret_keys`](crate::evaluate::secret_keys)) changed (a value that became secret must be
/// sealed now, not at some later change).
pub(crate) fn record_is_stale(
    old: &ResourceState,
    registration: &Registration,
    dependencies: &[String],
    secrets: &BTreeSet<String>,
) -> bool {
    old.protect != registration.options.protect
        || old.dependencies != dependencies
        || &old.secrets != secrets
}
