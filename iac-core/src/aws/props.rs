//! Reading inputs: typed accessors over a property map where JSON `null` means "not set",
//! and errors that name the input.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::property::{Properties, PropertyMap};
use crate::provider::{CheckFailure, ProviderError};

/// Known inputs of a create or update.
pub(crate) struct Inputs<'a>(pub(crate) &'a PropertyMap);

fn set(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

impl<'a> Inputs<'a> {
    pub(crate) fn opt_str(&self, key: &str) -> Option<&'a str> {
        set(self.0.get(key)).and_then(Value::as_str)
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, ProviderError> {
        self.opt_str(key).ok_or_else(|| missing(key))
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        set(self.0.get(key))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub(crate) fn opt_i64(&self, key: &str) -> Option<i64> {
        set(self.0.get(key)).and_then(Value::as_i64)
    }

    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        strings(self.0.get(key))
    }

    pub(crate) fn tags(&self) -> BTreeMap<String, String> {
        tags(self.0.get("tags"))
    }
}

pub(crate) fn missing(key: &str) -> ProviderError {
    ProviderError::with_code("MissingInput", format!("input `{key}` is required"))
}

pub(crate) fn strings(value: Option<&Value>) -> Vec<String> {
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

pub(crate) fn tags(value: Option<&Value>) -> BTreeMap<String, String> {
    set(value)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A planned input as a string when it is set and known.
pub(crate) fn known_str<'a>(inputs: &'a Properties, key: &str) -> Option<&'a str> {
    set(inputs.known(key)).and_then(Value::as_str)
}

/// Check helper: a required input must be set (an unknown value counts as set).
pub(crate) fn require(inputs: &Properties, keys: &[&str], failures: &mut Vec<CheckFailure>) {
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

/// Check helper: a CIDR input, when known, must parse.
pub(crate) fn check_cidr(inputs: &Properties, key: &str, failures: &mut Vec<CheckFailure>) {
    if let Some(text) = known_str(inputs, key) {
        if let Err(reason) = text.parse::<super::Cidr>() {
            failures.push(CheckFailure::new(key, reason));
        }
    }
}

/// A map of `key -> value` as JSON.
pub(crate) fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> PropertyMap {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}
