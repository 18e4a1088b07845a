//! A replaced AWS node rolls: brokers given a bigger root volume are replaced one at a time —
//! taken down, made again, deployed onto alone (`deploy.sh node`), then the gate — on the
//! emulator, with a stand-in for the platform node's APIs and a stand-in for Ansible that
//! writes down each run. A test binary of its own: it points the deployment's Ansible, its
//! logs and its SSH files at the test's folder through the environment before anything runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/emulator.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use emulator::*;
use iac_core::Stack;
use kafka_components::KafkaPlatform;
use kafka_components::deploy::{ANSIBLE_CORE_VERSION, CP_ANSIBLE_VERSION};

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for the virtualenv `deploy.sh` runs Ansible from, under `cache`: each
/// `ansible-playbook` run is a line `playbook <limit or all> <playbook's file name>` in
/// `events`; `ansible` answers a cluster id; `ansible-galaxy` has cp-ansible.
fn stand_in_ansible(cache: &Path, events: &Path) {
    let bin = cache.join(format!("ansible-core-{ANSIBLE_CORE_VERSION}/bin"));
    std::fs::create_dir_all(&bin).unwrap();
    let events = events.display();
    script(
        &bin.join("ansible-playbook"),
        &format!(
            r#"limit=all
while [ $# -gt 1 ]; do
  [ "$1" = --limit ] && limit=$2
  shift
done
echo "playbook $limit $(basename "$1")" >>"{events}"
echo "PLAY RECAP"
"#
        ),
    );
    script(
        &bin.join("ansible"),
        &format!("echo \"ansible $*\" >>\"{events}\"\necho 'cluster.id=stand-in'"),
    );
    script(
        &bin.join("ansible-galaxy"),
        &format!("echo 'confluent.platform {CP_ANSIBLE_VERSION}'"),
    );
}

fn append(events: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(events)
        .unwrap();
    writeln!(file, "{line}").unwrap();
}

/// The instance id and private DNS name of each of the stack's brokers not terminated, by
/// node name (`broker-2`).
async fn brokers(ec2: &aws_sdk_ec2::Client, stack: &str) -> BTreeMap<String, (String, String)> {
    live_brokers(ec2, stack)
        .await
        .iter()
        .map(|i| {
            let name = name_tag(i.tags());
            let node = name.trim_start_matches(&format!("{stack}-")).to_owned();
            let id = i.instance_id().unwrap_or_default().to_owned();
            (
                node,
                (id, i.private_dns_name().unwrap_or_default().to_owned()),
            )
        })
        .collect()
}

/// The folder [`the_roll`] works in, set by the test that runs it.
const FOLDER: &str = "KAFKA_PLATFORM_ROLL_TEST_DIR";

#[test]
fn replaced_brokers_roll_one_at_a_time_each_deployed_onto_before_its_gate() {
    // The deployment reads Ansible, writes its logs and forgets host keys where the
    // environment says: the roll runs in a process of its own, with an environment of the
    // test's folder (a test cannot change its own process's).
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    stand_in_ansible(&cache, &dir.path().join("events"));
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/known_hosts"), "").unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_roll", "--ignored", "--nocapture"])
        .env(FOLDER, dir.path())
        .env("KAFKA_PLATFORM_CACHE", &cache)
        .env("XDG_STATE_HOME", dir.path().join("state-home"))
        .env("HOME", &home)
        .status()
        .unwrap();
    assert!(status.success(), "the roll failed: {status}");
}

#[tokio::test]
#[ignore = "run by replaced_brokers_roll_one_at_a_time_each_deployed_onto_before_its_gate"]
async fn the_roll() {
    let dir = PathBuf::from(std::env::var_os(FOLDER).expect("run by the test above"));
    let events = dir.join("events");
    let (engine, ec2) = engine(&dir.join("state")).await;
    let name = format!("replace{}", std::process::id());
    // An image cp-ansible deploys onto (the emulator has no Debian of its own).
    let image = format!("debian-12-amd64-{name}");
    ec2.register_image()
        .name(&image)
        .root_device_name("/dev/xvda")
        .virtualization_type("hvm")
        .send()
        .await
        .unwrap();

    // The stand-in platform node writes down, at each health question, which brokers are
    // replaced by then (their instance ids differ from the first apply's).
    let first_ids = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let (admin_api, prometheus) = {
        let (ec2, name, events) = (ec2.clone(), name.clone(), events.clone());
        let first_ids = std::sync::Arc::clone(&first_ids);
        stand_in(move || {
            let (ec2, name, events) = (ec2.clone(), name.clone(), events.clone());
            let first_ids = std::sync::Arc::clone(&first_ids);
            async move {
                let now = brokers(&ec2, &name).await;
                let first: BTreeMap<String, String> = first_ids.lock().unwrap().clone();
                let replaced: Vec<&str> = now
                    .iter()
                    .filter(|(node, (id, _))| first.get(*node).is_some_and(|f| f != id))
                    .map(|(node, _)| node.as_str())
                    .collect();
                append(
                    &events,
                    &format!("health replaced [{}]", replaced.join(" ")),
                );
            }
        })
        .await
    };
    let rendered = dir.join("rendered").display().to_string();
    let bin: PathBuf = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let program = |root_volume_gib: u32| {
        let mut config = config("10.0.0.0/16");
        config.ports.admin_api = admin_api;
        config.ports.prometheus = prometheus;
        if let Some(site) = config.aws_mut() {
            // The emulator's account owns what it registers, with no architecture.
            site.ami.owners = vec!["123456789012".to_owned()];
            site.ami.name.clone_from(&image);
            site.ami.architecture = None;
            site.deploy.enabled = true;
            site.deploy.bin_dir = bin.display().to_string();
            site.deploy.platform_host = Some("127.0.0.1".to_owned());
            site.nodes.broker.root_volume_gib = Some(root_volume_gib);
        }
        let mut stack = Stack::new(name.clone());
        KafkaPlatform::register(&mut stack, &config, &rendered).unwrap();
        stack.build().unwrap()
    };

    let first = program(40);
    let plan = engine.preview(&first).await.unwrap();
    apply_plan(&engine, &first, &plan).await;
    let made = brokers(&ec2, &name).await;
    assert_eq!(made.len(), 3, "{made:?}");
    let first_runs = std::fs::read_to_string(&events).unwrap();
    assert!(
        first_runs.contains("playbook all confluent.platform.all"),
        "the first apply deploys with cp-ansible onto every node: {first_runs}"
    );
    assert!(
        !first_runs.contains("playbook ip-"),
        "no node is deployed onto alone at the first apply: {first_runs}"
    );
    *first_ids.lock().unwrap() = made
        .iter()
        .map(|(node, (id, _))| (node.clone(), id.clone()))
        .collect();
    std::fs::remove_file(&events).unwrap();

    let bigger = program(64);
    let plan = engine.preview(&bigger).await.unwrap();
    let preview = plan.render();
    assert!(
        preview.contains(
            "\nRolling, one at a time:\n  kafka: broker-1 (then deploy-broker-1) → broker-2 (then deploy-broker-2) → broker-3 (then deploy-broker-3), gate: "
        ),
        "{preview}"
    );
    let applied = apply_plan(&engine, &bigger, &plan).await;
    assert_eq!(applied.counts.replace, 3, "{applied}");

    // Each broker: asked before (the ones before it replaced), replaced, deployed onto alone
    // at the private DNS name the emulator gave the new instance, asked after; then the next.
    let now = brokers(&ec2, &name).await;
    let mut expected = Vec::new();
    for n in 1..=3 {
        let before: Vec<String> = (1..n).map(|b| format!("broker-{b}")).collect();
        let after: Vec<String> = (1..=n).map(|b| format!("broker-{b}")).collect();
        let dns = &now[&format!("broker-{n}")].1;
        expected.push(format!("health replaced [{}]", before.join(" ")));
        expected.push(format!("playbook {dns} nodes.yml"));
        expected.push(format!("playbook {dns} confluent.platform.all"));
        expected.push(format!("health replaced [{}]", after.join(" ")));
    }
    let seen = std::fs::read_to_string(&events).unwrap();
    assert_eq!(seen.lines().collect::<Vec<_>>(), expected);
    for (node, (id, _)) in &now {
        assert_ne!(
            Some(id),
            first_ids.lock().unwrap().get(node),
            "{node} replaced"
        );
    }

    destroy_stack(&engine, &name).await;
    assert!(instance_names(&ec2, &name).await.is_empty());
}
