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

/// A map of fully known properties (what providers create, update and return), in key
/// order, used like a `BTreeMap<String, Value>`. Kept as a sorted list: a resource has a
/// handful of properties, and a tree would allocate a node of eleven for them (the state holds
/// two for every resource).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PropertyMap(LiteMap<String, Value>);

impl PropertyMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.get_mut(key)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key`, returning its previous value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.0.insert(key, value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Keeps only the properties `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &Value) -> bool) {
        self.0.retain(|k, v| keep(k, v));
    }

    /// Every property, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Value)> + ExactSizeIterator {
        self.0.iter()
    }

    /// Every property, in key order, to change values in place.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Value)> {
        self.0.iter_mut()
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k)
    }

    /// Every value, in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator {
        self.0.iter().map(|(_, v)| v)
    }

    /// Every value, in key order, to change in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Value> {
        self.0.iter_mut().map(|(_, v)| v)
    }
}

/// Shown as the map it is.
impl std::fmt::Debug for PropertyMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Written as a JSON object, in key order.
impl Serialize for PropertyMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Read as a JSON object, kept without spare room (a state holds many).
impl<'de> Deserialize<'de> for PropertyMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut entries = LiteMap::<String, Value>::deserialize(deserializer)?.into_tuple_vec();
        entries.shrink_to_fit();
        Ok(Self(LiteMap::from_sorted_store_unchecked(entries)))
    }
}

/// `map["key"]`, as on a `BTreeMap`: panics when the key is not set.
impl std::ops::Index<&str> for PropertyMap {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no property `{key}`"),
        }
    }
}

/// Later values of a key win, as in a map.
impl FromIterator<(String, Value)> for PropertyMap {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, Value); N]> for PropertyMap {
    fn from(entries: [(String, Value); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl From<BTreeMap<String, Value>> for PropertyMap {
    fn from(map: BTreeMap<String, Value>) -> Self {
        map.into_iter().collect()
    }
}

impl Extend<(String, Value)> for PropertyMap {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for PropertyMap {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_tuple_vec().into_iter()
    }
}

/// A borrowed entry as a pair of references.
type Pair<'a> = (&'a String, &'a Value);

impl<'a> IntoIterator for &'a PropertyMap {
    type Item = Pair<'a>;
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, Value)>, fn(&'a (String, Value)) -> Pair<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.as_slice().iter().map(|(k, v)| (k, v))
    }
}

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
                PropertyValue::Known(value) => old.get(k) != Some(value),
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

    #[test]
    fn a_property_map_behaves_as_a_btree_map_and_is_stored_as_a_json_object() {
        let mut m = PropertyMap::from([
            ("b".to_owned(), Value::from(1)),
            ("a".to_owned(), Value::from(2)),
            ("b".to_owned(), Value::from(3)),
        ]);
        assert_eq!(m["b"], Value::from(3), "the later value wins");
        assert_eq!(m.insert("c".to_owned(), Value::from(5)), None);
        assert_eq!(
            m.insert("a".to_owned(), Value::from(4)),
            Some(Value::from(2))
        );
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(m.contains_key("c") && !m.contains_key("d") && m.get("d").is_none());
        assert_eq!(m.remove("c"), Some(Value::from(5)));
        m.extend([("0".to_owned(), Value::Null)]);
        assert_eq!(
            (m.len(), m.iter().next()),
            (3, Some((&"0".to_owned(), &Value::Null)))
        );
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"0":null,"a":4,"b":3}"#);
        // Read in any order, kept in key order, equal to the map written.
        let read: PropertyMap = serde_json::from_str(r#"{"b":3,"0":null,"a":4}"#).unwrap();
        assert_eq!(read, m);
        assert_eq!(
            format!("{m:?}"),
            r#"{"0": Null, "a": Number(4), "b": Number(3)}"#
        );
        let owned: Vec<(String, Value)> = m.into_iter().collect();
        assert_eq!(owned.len(), 3);
    }
}
