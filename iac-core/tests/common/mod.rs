//! Helpers shared by the engine's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use iac_core::testing::TestProvider;
use iac_core::{
    ApplyOptions, ApplySummary, Engine, FileBackend, Inputs, Passphrase, Plan, Program, Providers,
    Resource, ResourceOptions, Stack,
};

pub const THING: &str = "test:Thing";
pub const LOOKUP: &str = "test:Lookup";

pub fn providers(provider: &Arc<TestProvider>) -> Providers {
    let mut providers = Providers::new();
    providers.register(provider.clone(), [THING, LOOKUP]);
    providers
}

pub fn engine(provider: &Arc<TestProvider>, dir: &Path) -> Engine {
    Engine::new(providers(provider), FileBackend::new(dir))
        .with_passphrase(Passphrase::new("test passphrase"))
}

/// What a run killed mid-apply leaves: its state files, and its lock file held by no
/// process. A copy of `dir` (the run in this process still holds the original's lock), with
/// an engine on it.
pub fn after_kill(provider: &Arc<TestProvider>, dir: &Path) -> (Engine, tempfile::TempDir) {
    let copy = tempfile::TempDir::new().expect("temp dir");
    for entry in std::fs::read_dir(dir).expect("state dir") {
        let path = entry.expect("entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, copy.path().join(name)).expect("copy");
        }
    }
    (engine(provider, copy.path()), copy)
}

pub fn thing(stack: &mut Stack, name: &str, inputs: Inputs) -> Resource {
    stack.register(THING, name, inputs, ResourceOptions::default())
}

pub fn thing_with(
    stack: &mut Stack,
    name: &str,
    inputs: Inputs,
    options: ResourceOptions,
) -> Resource {
    stack.register(THING, name, inputs, options)
}

pub async fn preview(engine: &Engine, program: &Program) -> Plan {
    engine.preview(program).await.expect("preview succeeds")
}

pub async fn up_with(engine: &Engine, program: &Program, parallelism: usize) -> ApplySummary {
    let plan = preview(engine, program).await;
    let options = ApplyOptions {
        parallelism,
        ..ApplyOptions::default()
    };
    engine
        .apply(program, &plan, &options)
        .await
        .expect("apply runs")
}

pub async fn up(engine: &Engine, program: &Program) -> ApplySummary {
    up_with(engine, program, 8).await
}

pub async fn destroy(engine: &Engine, stack: &str) -> ApplySummary {
    engine
        .destroy(stack, &ApplyOptions::default())
        .await
        .expect("destroy runs")
}

/// Every file under `dir`, concatenated (to search state bytes for plaintext).
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("state dir exists").flatten() {
        if entry.path().is_file() {
            out.extend(std::fs::read(entry.path()).expect("readable"));
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The id the stack records for `name`.
pub async fn recorded_id(engine: &Engine, stack: &str, name: &str) -> String {
    let state = engine
        .state(stack)
        .await
        .unwrap()
        .expect("the stack has state");
    state
        .resource(name)
        .expect("the stack records it")
        .id
        .clone()
}
