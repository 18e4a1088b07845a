//! Snapshots of the preview text for representative plans (reviewed like code, in
//! `snapshots/iac-core/`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::sync::Arc;

use common::*;
use iac_core::testing::TestProvider;
use iac_core::{Inputs, Output, ResourceOptions, Stack};
use tempfile::TempDir;

macro_rules! snapshot {
    ($name:literal, $value:expr) => {
        let value = $value;
        insta::with_settings!({
            snapshot_path => "../../snapshots/iac-core",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, value);
        })
    };
}

fn first(password: &str) -> iac_core::Program {
    let mut s = Stack::new("dev");
    let ami = s.read(LOOKUP, "ami", Inputs::new().with("query", "debian-12"));
    let vpc = thing(
        &mut s,
        "vpc",
        Inputs::new()
            .with("cidr", "10.0.0.0/16")
            .with("dns_hostnames", true),
    );
    let subnet = thing(
        &mut s,
        "subnet-a",
        Inputs::new()
            .with("vpc_id", vpc.id())
            .with("cidr", "10.0.1.0/24"),
    );
    thing(&mut s, "old-bucket", Inputs::new().with("size", 5));
    thing(
        &mut s,
        "db",
        Inputs::new()
            .with("subnet_id", subnet.id())
            .with("image", ami.output::<String>("value"))
            .with("password", Output::secret(password.to_owned())),
    );
    s.build().expect("valid")
}

#[tokio::test]
async fn preview_of_a_new_stack_shows_known_and_unknown_inputs_and_hides_secrets() {
    let provider = Arc::new(TestProvider::new());
    let dir = TempDir::new().unwrap();
    let engine = engine(&provider, dir.path());
    snapshot!(
        "preview_create",
        preview(&engine, &first("s3cret")).await.render()
    );
}

#[tokio::test]
async fn preview_of_changes_shows_update_replace_delete_and_property_diffs() {
    let provider = Arc::new(TestProvider::new().replace_on(["cidr"]));
    let dir = TempDir::new().unwrap();
    let engine = engine(&provider, dir.path());
    up(&engine, &first("s3cret")).await;

    let mut s = Stack::new("dev");
    let ami = s.read(LOOKUP, "ami", Inputs::new().with("query", "debian-12"));
    let vpc = thing(
        &mut s,
        "vpc",
        Inputs::new()
            .with("cidr", "10.0.0.0/16")
            .with("dns_hostnames", false),
    );
    let subnet = thing_with(
        &mut s,
        "subnet-a",
        Inputs::new()
            .with("vpc_id", vpc.id())
            .with("cidr", "10.0.9.0/24"),
        ResourceOptions::new().delete_before_replace(),
    );
    thing(
        &mut s,
        "db",
        Inputs::new()
            .with("subnet_id", subnet.id())
            .with("image", ami.output::<String>("value"))
            .with("password", Output::secret("rotated".to_owned())),
    );
    thing(&mut s, "cache", Inputs::new().with("nodes", 2));
    let plan = preview(&engine, &s.build().unwrap()).await;
    snapshot!("preview_changes", plan.render());
    // The base state (lineage, serial) differs run to run; the steps must not.
    let mut record: serde_json::Value = serde_json::from_str(&plan.record().to_json()).unwrap();
    record["base"] = serde_json::json!("<base state>");
    snapshot!(
        "plan_record_changes",
        serde_json::to_string_pretty(&record).unwrap()
    );
}

#[tokio::test]
async fn preview_of_an_unchanged_stack_says_so() {
    let provider = Arc::new(TestProvider::new());
    let dir = TempDir::new().unwrap();
    let engine = engine(&provider, dir.path());
    up(&engine, &first("s3cret")).await;
    snapshot!(
        "preview_no_changes",
        preview(&engine, &first("s3cret")).await.render()
    );
}

#[tokio::test]
async fn an_unknown_input_is_sketched_with_what_is_known_and_a_secret_never_is() {
    let provider = Arc::new(TestProvider::new());
    let dir = TempDir::new().unwrap();
    let engine = engine(&provider, dir.path());
    let mut s = Stack::new("dev");
    let vpc = thing(&mut s, "vpc", Inputs::new().with("cidr", "10.0.0.0/16"));
    let files = vpc.id().map(|id| {
        std::collections::BTreeMap::from([(
            "hosts".to_owned(),
            format!("10.0.0.1 gateway\n{id} vpc\n"),
        )])
    });
    thing(
        &mut s,
        "config",
        Inputs::new()
            .with("files", files)
            .with("port", vpc.id().map(|id| id.len()))
            .with("subnet", vpc.id())
            .with("token", vpc.id().into_secret()),
    );
    let plan = preview(&engine, &s.build().unwrap()).await;
    let step = plan
        .record()
        .steps
        .iter()
        .find(|s| s.name == "config")
        .cloned()
        .unwrap();
    let sketch = |key: &str| {
        step.diff
            .iter()
            .find(|d| d.key == key)
            .and_then(|d| d.sketch.clone())
    };
    assert_eq!(
        sketch("files"),
        Some(serde_json::json!({"hosts": "10.0.0.1 gateway\n(known after apply) vpc\n"}))
    );
    assert_eq!(sketch("token"), None, "a secret is never sketched");
    assert_eq!(
        sketch("port"),
        None,
        "a number computed from the mark would look known: no sketch"
    );
    assert_eq!(sketch("subnet"), None, "the mark alone says nothing more");
    let text = plan.render();
    assert!(
        text.contains(
            "        files: (known after apply; as far as known now)\n          + hosts (2 lines)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("        port: (known after apply)\n"),
        "{text}"
    );
}
