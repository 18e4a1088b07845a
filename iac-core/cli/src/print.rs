//! What the command line prints: plans, outputs and JSON documents.

use std::collections::BTreeMap;

use iac_core::{Plan, Shown};

pub(crate) fn print_plan(plan: &Plan, json: bool) {
    if json {
        println!("{}", plan.record().to_json());
    } else {
        print!("{}", plan.render());
    }
}

/// Pretty JSON of a value that is always representable (maps with string keys).
pub(crate) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// A value as a JSON tree (maps with string keys: always representable).
pub(crate) fn to_value(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

/// Shown values as JSON: plain values as they are, the rest (`[secret]`, `(known after
/// apply)`) as their text.
pub(crate) fn shown_json(values: &BTreeMap<String, Shown>) -> serde_json::Value {
    values
        .iter()
        .map(|(key, shown)| {
            let value = match shown {
                Shown::Value(value) => value.clone(),
                other => serde_json::Value::String(other.to_string()),
            };
            (key.clone(), value)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub(crate) fn print_outputs(outputs: &BTreeMap<String, Shown>, json: bool) {
    if json {
        println!("{}", to_json(&shown_json(outputs)));
        return;
    }
    if outputs.is_empty() {
        return;
    }
    println!("\nOutputs:");
    for (key, value) in outputs {
        match value {
            Shown::Value(serde_json::Value::Array(items)) => {
                println!("  {key}:");
                for item in items {
                    println!("    {item}");
                }
            }
            other => println!("  {key}: {other}"),
        }
    }
}
