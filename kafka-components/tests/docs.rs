//! docs/environment.md names every table and field an environment file may hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use kafka_components::config::Receiver;
use kafka_components::{PlatformConfig, Site};
use serde_json::Value;

/// Every key of a configuration as written (the keys a user gives inside the custom property
/// tables are theirs, not the file's).
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                out.insert(key.clone());
                if !key.ends_with("_custom_properties") {
                    keys(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
        _ => {}
    }
}

/// A configuration with every optional field set, so that every field is written out.
fn with_every_field(mut config: PlatformConfig) -> PlatformConfig {
    config.security.credentials_dir = Some("/secrets".into());
    config.monitoring.alerts_pending_at_most = Some(Duration::from_secs(10));
    config.alerting.receivers.push(Receiver {
        name: "team".into(),
        webhook_url: "https://example.com/hook".into(),
    });
    config
        .kafka
        .broker_properties
        .insert("num.io.threads".into(), "8".into());
    config
        .kafka
        .controller_properties
        .insert("num.io.threads".into(), "8".into());
    match &mut config.site {
        Site::Aws(site) => {
            site.aws.endpoint_url = Some("http://127.0.0.1:5000".into());
            site.aws.consistency_window = Some(Duration::from_secs(30));
            site.ssh.user = Some("admin".into());
            site.ami.architecture = Some("x86_64".into());
            let group = &mut site.nodes.broker;
            (group.count, group.root_volume_gib, group.memory_gib) = (Some(3), Some(50), Some(8));
            site.deploy.build = Some("true".into());
            site.deploy.collection = Some("/cp-ansible.tar.gz".into());
            site.deploy.ssh_private_key = Some("~/.ssh/id_ed25519".into());
        }
        Site::Local(site) => {
            site.dir = Some("/data".into());
            site.build = Some("true".into());
        }
    }
    config
}

#[test]
fn the_environment_page_names_every_field() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let aws = PlatformConfig::on_aws(
        "eu-central-1",
        "203.0.113.10/32".parse().unwrap(),
        "ssh-ed25519 AAAA",
    );
    let local = PlatformConfig::load(&root.join("stacks/envs"), "local").unwrap();
    let mut fields = BTreeSet::new();
    for config in [aws, local] {
        keys(
            &serde_json::to_value(with_every_field(config)).unwrap(),
            &mut fields,
        );
    }
    let page = std::fs::read_to_string(root.join("docs/environment.md")).unwrap();
    let missing: Vec<&String> = fields
        .iter()
        .filter(|field| {
            ![
                format!("`{field}`"),
                format!("[{field}]"),
                format!("[{field}."),
                format!(".{field}]"),
            ]
            .iter()
            .any(|named| page.contains(named))
        })
        .collect();
    assert!(fields.len() > 60, "{fields:?}");
    assert!(
        missing.is_empty(),
        "docs/environment.md does not name {missing:?}"
    );
}
