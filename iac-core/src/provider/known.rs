//! Reading a provider's inputs: typed accessors over a property map where JSON `null` means
//! "not set", errors that name the input, and the check helpers every provider needs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CheckFailure, ProviderError};
use crate::property::{Properties, PropertyMap};

/// The known inputs of a create, read, update or delete, read by key.
#[derive(Debug, Clone, Copy)]
pub struct KnownInputs<'a>(pub &'a PropertyMap);

fn set(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

impl<'a> KnownInputs<'a> {
    /// A string input, when set.
    pub fn opt_str(&self, key: &str) -> Option<&'a str> {
        set(self.0.get(key)).and_then(Value::as_str)
    }

    /// A required string input.
    pub fn str(&self, key: &str) -> Result<&'a str, ProviderError> {
        self.opt_str(key).ok_or_else(|| missing(key))
    }

    /// A boolean input; unset is `false`.
    pub fn bool(&self, key: &str) -> bool {
        set(self.0.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// An integer input, when set.
    pub fn opt_i64(&self, key: &str) -> Option<i64> {
        set(self.0.get(key)).and_then(Value::as_i64)
    }

    /// A list of strings; unset is empty.
    pub fn strings(&self, key: &str) -> Vec<String> {
        strings(self.0.get(key))
    }

    /// A string map (the `tags` input, say); unset is empty.
    pub fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        string_map(self.0.get(key))
    }
}

/// The error for a required input that is not set.
pub fn missing(key: &str) -> ProviderError {
    ProviderError::with_code("MissingInput", format!("input `{key}` is required"))
}

/// A list of strings from a JSON value; anything else is empty.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    set(value)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A string map from a JSON object; anything else is empty.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    set(value)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A string map as a JSON object.
pub fn string_map_value(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// A planned input as a string when it is set and known.
pub fn known_str<'a>(inputs: &'a Properties, key: &str) -> Option<&'a str> {
    set(inputs.known(key)).and_then(Value::as_str)
}

/// Check helper: each of `keys` must be set (an unknown value counts as set).
pub fn require(inputs: &Properties, keys: &[&str], failures: &mut Vec<CheckFailure>) {
    for key in keys {
        let absent = match inputs.get(key) {
            None => true,
            Some(v) => v.known().is_some_and(Value::is_null),
        };
        if absent {
            failures.push(CheckFailure::new(*key, "is required"));
        }
    }
}

/// A property map from `key -> value` pairs.
pub fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> PropertyMap {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::property::PropertyValue;

    #[test]
    fn null_means_unset_and_required_inputs_are_named() {
        let values = map([
            ("a", json!("x")),
            ("b", Value::Null),
            ("t", json!({"k": "v", "n": 1})),
        ]);
        let inputs = KnownInputs(&values);
        assert_eq!(inputs.opt_str("a"), Some("x"));
        assert_eq!(inputs.opt_str("b"), None);
        assert_eq!(
            inputs.str("b").map_err(|e| e.to_string()),
            Err("MissingInput: input `b` is required".to_owned())
        );
        assert_eq!(
            inputs.string_map("t"),
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        );
        assert!(!inputs.bool("missing"));

        let mut planned = Properties::new();
        planned.insert("a".to_owned(), PropertyValue::Unknown);
        planned.insert("b".to_owned(), PropertyValue::Known(Value::Null));
        let mut failures = Vec::new();
        require(&planned, &["a", "b", "c"], &mut failures);
        let named: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(named, ["b", "c"], "an unknown value counts as set");
    }
}
