//! Property values as the engine sees them: JSON, possibly unknown until apply.
//!
//! The engine knows no resource type. Inputs and outputs of every resource are maps of
//! property name to JSON. During preview an input that depends on a resource not yet created
//! is [`PropertyValue::Unknown`]; by the time a provider is asked to create or update, every
//! input is known and the map is a plain [`PropertyMap`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A map of fully known properties (what providers create, update and return).
pub type PropertyMap = BTreeMap<String, Value>;

/// One property during planning: known, or known only after apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertyValue {
    /// The value is known now.
    Known(Value),
    /// The value depends on something that only apply will produce.
    Unknown,
}

impl PropertyValue {
    /// The value, if known.
    pub fn known(&self) -> Option<&Value> {
        match self {
            Self::Known(value) => Some(value),
            Self::Unknown => None,
        }
    }
}

/// Planned inputs of a resource: every property known or unknown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Properties(BTreeMap<String, PropertyValue>);

impl Properties {
    /// An empty property set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one property.
    pub fn insert(&mut self, key: impl Into<String>, value: PropertyValue) {
        self.0.insert(key.into(), value);
    }

    /// Removes a property.
    pub fn remove(&mut self, key: &str) -> Option<PropertyValue> {
        self.0.remove(key)
    }

    /// The property, known or unknown; `None` when it is not set at all.
    pub fn get(&self, key: &str) -> Option<&PropertyValue> {
        self.0.get(key)
    }

    /// The property's value when it is set and known.
    pub fn known(&self, key: &str) -> Option<&Value> {
        self.0.get(key).and_then(PropertyValue::known)
    }

    /// Whether the property is set but unknown until apply.
    pub fn is_unknown(&self, key: &str) -> bool {
        matches!(self.0.get(key), Some(PropertyValue::Unknown))
    }

    /// Every property in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &PropertyValue)> {
        self.0.iter()
    }

    /// Whether every property is known.
    pub fn is_fully_known(&self) -> bool {
        self.0
            .values()
            .all(|v| matches!(v, PropertyValue::Known(_)))
    }

    /// The known map, or `None` if any property is still unknown.
    pub fn to_known(&self) -> Option<PropertyMap> {
        self.0
            .iter()
            .map(|(k, v)| v.known().map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Every key whose value differs from `old` (set, removed, changed or unknown).
    pub fn changed_keys(&self, old: &PropertyMap) -> Vec<String> {
        let mut keys: Vec<String> = self
            .0
            .iter()
            .filter(|(k, v)| match v {
                PropertyValue::Known(value) => old.get(*k) != Some(value),
                PropertyValue::Unknown => true,
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.extend(old.keys().filter(|k| !self.0.contains_key(*k)).cloned());
        keys.sort();
        keys
    }
}

impl From<PropertyMap> for Properties {
    fn from(map: PropertyMap) -> Self {
        Self(
            map.into_iter()
                .map(|(k, v)| (k, PropertyValue::Known(v)))
                .collect(),
        )
    }
}

impl FromIterator<(String, PropertyValue)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, PropertyValue)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}
