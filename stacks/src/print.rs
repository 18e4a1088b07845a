//! What the CLI prints: plans, outputs, JSON documents, and what an applied environment
//! offers.

use std::collections::BTreeMap;

use iac_core::{Plan, Shown};
use kafka_components::deploy;

use crate::cli::Target;
use crate::environment::{Env, Registered, rendered_dir};
use crate::error::StacksError;

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

/// After a successful apply: where the configuration is, and what a local platform offers.
pub(crate) fn show_what_runs(
    registered: &Registered,
    env: &Env,
    target: &Target,
) -> Result<(), StacksError> {
    println!("\nConfiguration rendered to {}", rendered_dir(env, target)?);
    if !registered.services.is_empty() {
        println!("\nRunning on this machine:");
        for service in &registered.services {
            println!("  {:<22} {}", service.name, service.url);
        }
    }
    if let Some(credentials) = &registered.credentials {
        println!(
            "\nKeys and passwords (mode 0600; never commit them) in {}:",
            credentials.dir
        );
        for file in &credentials.files {
            println!("  {file}");
        }
    }
    Ok(())
}

/// On AWS with `[deploy]` off: what `apply` would run after the files, were it on.
pub(crate) fn show_deploy_off(env: &Env) {
    if let Some(site) = env.config.aws()
        && !site.deploy.enabled
    {
        let steps: Vec<&str> = deploy::steps(&env.config).map(|s| s.name).collect();
        println!(
            "Deploy: off (`enabled = false` under [deploy] in {}); on, apply would run after the files: {}",
            env.file.display(),
            steps.join(", ")
        );
    }
}
