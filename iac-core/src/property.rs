//! Property values as the engine sees them: JSON, possibly unknown until apply.
//!
//! The engine knows no resource type. Inputs and outputs of every resource are maps of
//! property name to JSON. During preview an input that depends on a resource not yet created
//! is [`PropertyValue::Unknown`]; by the time a provider is asked to create or update, every
//! input is known and the map is a plain [`PropertyMap`].

use std::collections::BTreeMap;

use litemap::LiteMap;
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

/// Planned inputs of a resource: every property known or unknown, in key order. Kept as a
/// sorted list: a resource has a handful of inputs, and a tree would allocate a whole node
/// for them (this is held for every resource of a plan).
#[derive(Clone, Default, PartialEq)]
pub struct Properties(LiteMap<String, PropertyValue>);

impl Properties {
    /// An empty property set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` properties.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(LiteMap::with_capacity(n))
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
        self.get(key).and_then(PropertyValue::known)
    }

    /// Whether the property is set but unknown until apply.
    pub fn is_unknown(&self, key: &str) -> bool {
        matches!(self.get(key), Some(PropertyValue::Unknown))
    }

    /// Every property in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &PropertyValue)> {
        self.0.iter()
    }

    /// Whether every property is known.
    pub fn is_fully_known(&self) -> bool {
        self.0
            .iter()
            .all(|(_, v)| matches!(v, PropertyValue::Known(_)))
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
        keys.extend(old.keys().filter(|k| self.get(k).is_none()).cloned());
        keys.sort();
        keys
    }
}

/// Shown as the map it is.
impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialised as a JSON object, in key order.
impl Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            BTreeMap::<String, PropertyValue>::deserialize(deserializer)?
                .into_iter()
                .collect(),
        )
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

/// Later values of a key win, as in a map.
impl FromIterator<(String, PropertyValue)> for Properties {
    fn from_iter<I: IntoIterator<Item = (String, PropertyValue)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(v: i64) -> PropertyValue {
        PropertyValue::Known(Value::from(v))
    }

    #[test]
    fn properties_behave_as_a_map_in_key_order() {
        let mut p: Properties = [("b", 1), ("a", 2), ("b", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), known(v)))
            .collect();
        assert_eq!(p.known("b"), Some(&Value::from(3)), "the later value wins");
        p.insert("c", PropertyValue::Unknown);
        p.insert("a", known(4));
        let keys: Vec<&String> = p.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(p.is_unknown("c") && !p.is_fully_known());
        assert_eq!(p.remove("c"), Some(PropertyValue::Unknown));
        assert_eq!(p.remove("c"), None);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"a":{"known":4},"b":{"known":3}}"#);
        assert_eq!(serde_json::from_str::<Properties>(&json).unwrap(), p);
        assert_eq!(
            format!("{p:?}"),
            r#"{"a": Known(Number(4)), "b": Known(Number(3))}"#
        );
        let old = PropertyMap::from([
            ("a".to_owned(), Value::from(4)),
            ("z".to_owned(), Value::from(0)),
        ]);
        assert_eq!(p.changed_keys(&old), ["b", "z"]);
    }
}
