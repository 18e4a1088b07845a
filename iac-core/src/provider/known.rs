//! Reading a provider's inputs: the arguments of a [`resource!`](crate::resource) declaration
//! as their plain types (JSON `null` means "not set"), errors that name the input, and the
//! check helpers every provider needs (`check` sees planned inputs, some still unknown, so it
//! reads them by key).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CheckFailure, ProviderError};
use crate::property::{Properties, PropertyMap};

fn set(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// The type of one argument of a [`resource!`](crate::resource) declaration: read from the
/// inputs a provider receives (unset is the type's default) and required unless optional.
pub trait Argument: Serialize + DeserializeOwned + Default {
    /// A stack must set it: `check` refuses the resource when it is unset.
    const REQUIRED: bool;
}

macro_rules! required_arguments {
    ($($ty:ty),*) => {
        $(impl Argument for $ty {
            const REQUIRED: bool = true;
        })*
    };
}

required_arguments!(String, bool, i64, u64, u32, u16, f64);

impl<T: Serialize + DeserializeOwned> Argument for Option<T> {
    const REQUIRED: bool = false;
}

impl<T: Serialize + DeserializeOwned> Argument for Vec<T> {
    const REQUIRED: bool = false;
}

impl<V: Serialize + DeserializeOwned> Argument for BTreeMap<String, V> {
    const REQUIRED: bool = false;
}

/// What reading an unset required argument gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// The missing-input error (a create, update or delete needs it).
    Refused,
    /// The type's default (a read of what may be an import, with nothing recorded).
    Default,
}

/// One argument from known inputs: unset (absent or `null`) is the type's default, or for a
/// required argument what `unset` says; a value of another type is an error naming the input.
pub fn argument<T: Argument>(
    inputs: &PropertyMap,
    key: &str,
    unset: Unset,
) -> Result<T, ProviderError> {
    match set(inputs.get(key)) {
        None if T::REQUIRED && unset == Unset::Refused => Err(missing(key)),
        None => Ok(T::default()),
        Some(value) => T::deserialize(value).map_err(|e| {
            ProviderError::with_code("InvalidInput", format!("input `{key}`: {e}")).refused()
        }),
    }
}

/// An argument as the JSON value a read reports (`None` is `null`).
pub fn property<T: Argument>(value: &T) -> Value {
    // Every `Argument` serialises: its maps have string keys.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A required argument a read needs, from what it records (empty: an import that recorded
/// nothing), or the missing-input error.
pub fn needed<'a>(value: &'a str, key: &str) -> Result<&'a str, ProviderError> {
    if value.is_empty() {
        Err(missing(key))
    } else {
        Ok(value)
    }
}

/// The error for a required input that is not set.
pub fn missing(key: &str) -> ProviderError {
    ProviderError::with_code("MissingInput", format!("input `{key}` is required")).refused()
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::property::PropertyValue;

    #[test]
    fn null_means_unset_and_required_inputs_are_named() {
        let values = PropertyMap::from([
            ("a".to_owned(), json!("x")),
            ("b".to_owned(), Value::Null),
            ("t".to_owned(), json!({"k": "v"})),
            ("n".to_owned(), json!("ten")),
        ]);
        let read = |key, unset| argument::<String>(&values, key, unset).map_err(|e| e.to_string());
        assert_eq!(read("a", Unset::Refused), Ok("x".to_owned()));
        assert_eq!(
            read("b", Unset::Refused),
            Err("MissingInput: input `b` is required".to_owned())
        );
        assert_eq!(read("b", Unset::Default), Ok(String::new()));
        assert_eq!(
            argument::<Option<String>>(&values, "b", Unset::Refused),
            Ok(None),
            "an optional argument is never missing"
        );
        assert_eq!(
            argument::<BTreeMap<String, String>>(&values, "t", Unset::Refused),
            Ok(BTreeMap::from([("k".to_owned(), "v".to_owned())]))
        );
        let wrong = argument::<i64>(&values, "n", Unset::Refused).map_err(|e| e.to_string());
        assert!(
            wrong
                .as_ref()
                .is_err_and(|e| e.starts_with("InvalidInput: input `n`: invalid type")),
            "{wrong:?}"
        );
        assert_eq!(
            needed("", "k").map_err(|e| e.to_string()),
            Err("MissingInput: input `k` is required".to_owned())
        );

        let mut planned = Properties::new();
        planned.insert("a".to_owned(), PropertyValue::Unknown);
        planned.insert("b".to_owned(), PropertyValue::Known(Value::Null));
        let mut failures = Vec::new();
        require(&planned, &["a", "b", "c"], &mut failures);
        let named: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(named, ["b", "c"], "an unknown value counts as set");
    }
}
