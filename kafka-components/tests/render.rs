//! Rendered configuration: snapshots, determinism, an address change reaching every file,
//! atomic writes, and the real validators (promtool, ansible-inventory).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kafka_components::render::{self, NodeFacts, RenderedFile};
use kafka_components::{PlatformConfig, Role};
use serde_json::{Value, json};

fn dev() -> PlatformConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks/envs");
    PlatformConfig::load(&dir, "dev").unwrap()
}

/// The `nodes` output of an applied dev stack, with broker-2 at `broker2_ip`.
fn outputs(broker2_ip: &str) -> BTreeMap<String, Value> {
    let mut nodes = Vec::new();
    let zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"];
    for (role, count, base) in [
        ("controller", 3, 10),
        ("broker", 3, 20),
        ("connect", 1, 30),
        ("platform", 1, 40),
    ] {
        for (i, zone) in zones.iter().enumerate().take(count) {
            let ip = if role == "broker" && i == 1 {
                broker2_ip.to_owned()
            } else {
                format!("10.0.{}.{}", i + 1, base)
            };
            nodes.push(json!({
                "name": format!("dev-{role}-{}", i + 1),
                "role": role,
                "index": i + 1,
                "zone": zone,
                "private_ip": ip,
                "public_ip": format!("203.0.113.{}", base + i),
                "private_dns": format!("ip-{}.eu-central-1.compute.internal", ip.replace('.', "-")),
                "id": format!("i-{role}{i}"),
            }));
        }
    }
    // Shuffled on purpose: the order of the output must not matter.
    nodes.reverse();
    BTreeMap::from([("nodes".to_owned(), Value::Array(nodes))])
}

fn rendered(broker2_ip: &str) -> Vec<RenderedFile> {
    let nodes = NodeFacts::from_outputs("dev", &outputs(broker2_ip)).unwrap();
    render::render("dev", &dev(), &nodes).unwrap()
}

#[test]
fn every_file_is_snapshotted_and_byte_identical_run_to_run() {
    let files = rendered("10.0.2.20");
    assert_eq!(files, rendered("10.0.2.20"));
    for file in &files {
        insta::with_settings!({
            snapshot_path => "../../snapshots/kafka-components",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(file.path.replace('/', "__"), file.contents);
        });
    }
}

#[test]
fn a_changed_address_reaches_every_file_that_mentions_the_node() {
    let before = rendered("10.0.2.20");
    let after = rendered("10.0.2.99");
    let mentioning: Vec<&str> = before
        .iter()
        .filter(|f| f.contents.contains("10.0.2.20"))
        .map(|f| f.path)
        .collect();
    assert_eq!(
        mentioning,
        [
            "ansible/hosts.yml",
            "hosts/hosts",
            "prometheus/prometheus.yml"
        ]
    );
    for (old, new) in before.iter().zip(&after) {
        assert!(
            !new.contents.contains("10.0.2.20"),
            "{} still has the old address",
            new.path
        );
        if mentioning.contains(&old.path) {
            assert_ne!(
                old.contents, new.contents,
                "{} did not follow the change",
                old.path
            );
            assert!(
                new.contents.contains("10.0.2.99"),
                "{} lacks the new address",
                new.path
            );
        } else {
            assert_eq!(
                old.contents, new.contents,
                "{} names no node and must not change",
                old.path
            );
        }
    }
}

#[test]
fn rendering_a_stack_that_was_never_applied_says_so() {
    let err = NodeFacts::from_outputs("dev", &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stack `dev` has no `nodes` output: apply it first"
    );
    let broken = BTreeMap::from([("nodes".to_owned(), json!([{"name": "x"}]))]);
    let err = NodeFacts::from_outputs("dev", &broken)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the `nodes` output of stack `dev` is not the platform's: missing field"),
        "{err}"
    );
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    assert_eq!(nodes.iter().filter(|n| n.role == Role::Broker).count(), 3);
    assert_eq!(
        nodes[0].name, "dev-controller-1",
        "sorted by role, then index"
    );
}

#[test]
fn writing_replaces_the_whole_folder() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dev");
    std::fs::create_dir_all(out.join("stale")).unwrap();
    std::fs::write(out.join("stale/old.yml"), "old").unwrap();
    let files = rendered("10.0.2.20");
    render::write(&out, &files).unwrap();
    assert!(
        !out.join("stale").exists(),
        "files of an earlier render are gone"
    );
    for file in &files {
        assert_eq!(
            std::fs::read_to_string(out.join(file.path)).unwrap(),
            file.contents
        );
    }
    let entries: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        entries,
        [std::ffi::OsString::from("dev")],
        "no staging folder is left behind"
    );
}

/// A validator from the project's setup (PATH, or the virtualenv scripts/setup.sh made).
fn tool(name: &str) -> PathBuf {
    if let Some(venv) = std::env::var_os("KAFKA_PLATFORM_VENV") {
        let path = Path::new(&venv).join("bin").join(name);
        if path.exists() {
            return path;
        }
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("`{name}` is missing: scripts/setup.sh installs it (run scripts/test.sh)")
    })
}

#[test]
fn the_real_validators_accept_the_rendered_files() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dev");
    render::write(&out, &rendered("10.0.2.20")).unwrap();

    let promtool = Command::new(tool("promtool"))
        .args(["check", "config"])
        .arg(out.join("prometheus/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        promtool.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );

    let amtool = |file: &Path| {
        let out = Command::new(tool("amtool"))
            .arg("check-config")
            .arg(file)
            .output()
            .unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "amtool: {output}");
    };
    amtool(&out.join("alertmanager/alertmanager.yml"));
    // With receivers: the first gets everything, critical alerts go to all of them.
    let mut config = dev();
    config.alerting.receivers = vec![
        kafka_components::config::Receiver {
            name: "ops".into(),
            webhook_url: "https://chat.example/hooks/ops".into(),
        },
        kafka_components::config::Receiver {
            name: "pager".into(),
            webhook_url: "https://pager.example/alerts".into(),
        },
    ];
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    let with_receivers = render::render("dev", &config, &nodes).unwrap();
    let alertmanager = with_receivers
        .iter()
        .find(|f| f.path == "alertmanager/alertmanager.yml")
        .unwrap();
    assert!(
        alertmanager.contents.contains("receiver: ops")
            && alertmanager.contents.contains("receiver: pager")
    );
    let custom = root.path().join("custom.yml");
    std::fs::write(&custom, &alertmanager.contents).unwrap();
    amtool(&custom);

    let inventory = Command::new(tool("ansible-inventory"))
        .arg("-i")
        .arg(out.join("ansible/hosts.yml"))
        .arg("--list")
        .env("ANSIBLE_LOCAL_TEMP", root.path())
        .env("ANSIBLE_HOME", root.path())
        .output()
        .unwrap();
    assert!(
        inventory.status.success(),
        "ansible-inventory: {}",
        String::from_utf8_lossy(&inventory.stderr)
    );
    let listed: Value = serde_json::from_slice(&inventory.stdout).unwrap();
    let hosts = |group: &str| -> Vec<String> {
        listed[group]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        hosts("kafka_controller"),
        [
            "ip-10-0-1-10.eu-central-1.compute.internal",
            "ip-10-0-2-10.eu-central-1.compute.internal",
            "ip-10-0-3-10.eu-central-1.compute.internal"
        ]
    );
    assert_eq!(hosts("kafka_broker").len(), 3);
    assert_eq!(hosts("kafka_connect").len(), 1);
    let broker2 = &listed["_meta"]["hostvars"]["ip-10-0-2-20.eu-central-1.compute.internal"];
    assert_eq!(broker2["ansible_host"], "203.0.113.21");
    assert_eq!(broker2["kafka_broker_jmxexporter_port"], 9999);
    assert_eq!(broker2["ansible_user"], "ec2-user");
    assert_eq!(
        broker2["kafka_broker_custom_properties"]["min.insync.replicas"],
        2
    );
    assert_eq!(broker2["kafka_platform_hosts"].as_array().unwrap().len(), 8);
}
