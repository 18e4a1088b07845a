//! `state …`: read or change a stack's recorded state, or move it between backends.

use std::path::Path;

use iac_core::state::{Checkpoint, StateBackend};
use iac_core::{Engine, Shown};

use crate::cli::{StateVerb, Target};
use crate::error::{Error, exit};
use crate::print::{shown_json, to_json};
use crate::program::StackProgram;

/// Runs a state verb.
pub(crate) async fn run<P: StackProgram>(verb: &StateVerb<P>) -> Result<u8, Error> {
    match verb {
        StateVerb::List { target } => list(target).await,
        StateVerb::Show { target, name } => show(target, name).await,
        StateVerb::Delete {
            target,
            name,
            force,
        } => delete(target, name, *force).await,
        StateVerb::Rename { target, old, new } => rename(target, old, new).await,
        StateVerb::Export { target } => export(target),
        StateVerb::Import { target, file } => import(target, file),
    }
}

/// A record as `state list --json` and `state show` print it (`show` adds its dependencies,
/// inputs and outputs, secrets as `[secret]`).
fn record_json(r: &iac_core::state::ResourceState, detailed: bool) -> serde_json::Value {
    let mut record = serde_json::json!({
        "name": r.name,
        "type": r.type_token,
        "id": r.id,
        "protect": r.protect,
        "delete_pending": r.delete_pending,
    });
    if detailed {
        record["dependencies"] = serde_json::json!(r.dependencies);
        record["inputs"] = shown_json(&Shown::map(&r.inputs, &r.secrets));
        record["outputs"] = shown_json(&Shown::map(&r.outputs, &r.secrets));
    }
    record
}

/// The stack's state, decrypted; a stack without state is the user's to check.
async fn recorded(engine: &Engine, stack: &str) -> Result<Checkpoint, Error> {
    engine.state(stack).await?.ok_or_else(|| Error::NoState {
        stack: stack.to_owned(),
    })
}

/// `state list`: a line per record (name, type, id, flags), or JSON.
async fn list<P: StackProgram>(target: &Target<P>) -> Result<u8, Error> {
    let checkpoint = recorded(&target.state_engine()?, &target.stack).await?;
    let records: Vec<_> = checkpoint.resources.iter().collect();
    if target.json {
        let listed: Vec<serde_json::Value> =
            records.iter().map(|r| record_json(r, false)).collect();
        println!("{}", to_json(&listed));
        return Ok(exit::OK);
    }
    let names = records.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let types = records
        .iter()
        .map(|r| r.type_token.len())
        .max()
        .unwrap_or(0);
    for r in records {
        let mut flags = String::new();
        if r.protect {
            flags.push_str("  protected");
        }
        if r.delete_pending {
            flags.push_str("  replaced: deleted by the next apply");
        }
        println!(
            "{:<names$}  {:<types$}  {}{flags}",
            r.name, r.type_token, r.id
        );
    }
    Ok(exit::OK)
}

/// `state show NAME`: the resource's records as JSON, secrets as `[secret]`.
async fn show<P: StackProgram>(target: &Target<P>, name: &str) -> Result<u8, Error> {
    let checkpoint = recorded(&target.state_engine()?, &target.stack).await?;
    let found: Vec<serde_json::Value> = checkpoint
        .resources
        .iter()
        .filter(|r| r.name == name)
        .map(|r| record_json(r, true))
        .collect();
    if found.is_empty() {
        return Err(Error::Engine(iac_core::EngineError::NoSuchResource {
            stack: target.stack.clone(),
            name: name.to_owned(),
        }));
    }
    for record in found {
        println!("{}", to_json(&record));
    }
    Ok(exit::OK)
}

/// `state delete NAME`: forgets it; says what was forgotten.
async fn delete<P: StackProgram>(target: &Target<P>, name: &str, force: bool) -> Result<u8, Error> {
    for r in target
        .state_engine()?
        .forget(&target.stack, name, force)
        .await?
    {
        eprintln!(
            "forgot `{}` ({} {}): it still exists; while the program has it, the next apply creates another",
            r.name, r.type_token, r.id
        );
    }
    Ok(exit::OK)
}

/// `state rename OLD NEW`.
async fn rename<P: StackProgram>(target: &Target<P>, old: &str, new: &str) -> Result<u8, Error> {
    target
        .state_engine()?
        .rename(&target.stack, old, new)
        .await?;
    eprintln!("renamed `{old}` to `{new}` in stack `{}`", target.stack);
    Ok(exit::OK)
}

/// `state export`: the stored state, as one JSON document.
fn export<P: StackProgram>(target: &Target<P>) -> Result<u8, Error> {
    let Some(checkpoint) = target.backend()?.load(&target.stack)? else {
        return Err(Error::NoState {
            stack: target.stack.clone(),
        });
    };
    println!("{}", to_json(&checkpoint));
    Ok(exit::OK)
}

/// `state import FILE`: stores an exported state where the stack has none, under its lock.
fn import<P: StackProgram>(target: &Target<P>, file: &Path) -> Result<u8, Error> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(Error::io(format!("cannot read {}", file.display())))?;
    let checkpoint = Checkpoint::from_snapshot(&target.stack, &text, file)?;
    let backend = target.backend()?;
    let _lock = backend.lock(&target.stack, "state import")?;
    if backend.load(&target.stack)?.is_some() {
        return Err(Error::StateExists {
            stack: target.stack.clone(),
        });
    }
    backend.save(&checkpoint)?;
    eprintln!(
        "imported stack `{}` ({} resources, serial {})",
        target.stack,
        checkpoint.resources.len(),
        checkpoint.serial
    );
    Ok(exit::OK)
}
