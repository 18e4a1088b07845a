//! Rendered configuration: snapshots, determinism, an address change reaching every file,
//! atomic writes, and the real validators (promtool, ansible-inventory).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use iac_core::PropertyMap;
use kafka_components::NodeFacts;
use kafka_components::nodes::NODES_OUTPUT;
use kafka_components::render::{self, RenderedFile};
use kafka_components::{PlatformConfig, Role};
use serde_json::{Value, json};
use support::{free_port, tool};

fn dev() -> PlatformConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    PlatformConfig::load(&dir, "dev").unwrap()
}

/// The `nodes` output of an applied dev stack, with broker-2 at `broker2_ip`.
fn outputs(broker2_ip: &str) -> PropertyMap {
    let mut nodes = Vec::new();
    let zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"];
    for (role, count, base) in [
        (Role::Controller, 3, 10),
        (Role::Broker, 3, 20),
        (Role::Connect, 1, 30),
        (Role::Platform, 1, 40),
    ] {
        for (i, zone) in zones.iter().enumerate().take(count) {
            let ip = if role == Role::Broker && i == 1 {
                broker2_ip.to_owned()
            } else {
                format!("10.0.{}.{}", i + 1, base)
            };
            nodes.push(NodeFacts {
                name: format!("dev-{}-{}", role.name(), i + 1),
                role,
                index: u32::try_from(i + 1).unwrap(),
                zone: (*zone).to_owned(),
                id: format!("i-{}{i}", role.name()),
                private_dns: format!("ip-{}.eu-central-1.compute.internal", ip.replace('.', "-")),
                private_ip: ip,
                public_ip: format!("203.0.113.{}", base + i),
                port_shift: 0,
            });
        }
    }
    // Shuffled on purpose: the order of the output must not matter.
    nodes.reverse();
    PropertyMap::from([(
        NODES_OUTPUT.to_owned(),
        serde_json::to_value(nodes).unwrap(),
    )])
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
    let (old_ip, old_dns) = ("10.0.2.20", "ip-10-0-2-20.eu-central-1.compute.internal");
    let (new_ip, new_dns) = ("10.0.2.99", "ip-10-0-2-99.eu-central-1.compute.internal");
    let mentions = |text: &str, ip: &str, dns: &str| text.contains(ip) || text.contains(dns);
    let mentioning: Vec<&str> = before
        .iter()
        .filter(|f| mentions(&f.contents, old_ip, old_dns))
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        mentioning,
        [
            "ansible/hosts.yml",
            "ansible/nodes.yml",
            "connect/connect-distributed.properties",
            "connect/http-source-connector.json",
            "hosts/hosts",
            "prometheus/prometheus.yml",
            "systemd/kafka-admin-api.service"
        ]
    );
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.path, new.path);
        assert!(
            !mentions(&new.contents, old_ip, old_dns),
            "{} still has the old address",
            new.path
        );
        if mentioning.contains(&old.path.as_str()) {
            assert!(
                mentions(&new.contents, new_ip, new_dns),
                "{} lacks the new address",
                new.path
            );
        } else {
            assert_eq!(
                old.contents, new.contents,
                "{} names no address and must not change",
                old.path
            );
        }
    }
}

#[test]
fn a_configuration_the_policies_refuse_renders_nothing() {
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    let mut config = dev();
    config.ports.broker_client = config.ports.broker_internal;
    let err = render::render("dev", &config, &nodes).unwrap_err();
    assert!(matches!(err, render::RenderError::Policy(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("`ports.broker_client`: 9091 is also `ports.broker_internal`"),
        "{err}"
    );
    let mut config = dev();
    config.aws_mut().unwrap().nodes.broker.count = Some(0);
    let err = render::render("dev", &config, &nodes)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`nodes.broker.count`: the platform needs at least one broker"),
        "{err}"
    );
}

#[test]
fn rendering_a_stack_that_was_never_applied_says_so() {
    let err = NodeFacts::from_outputs("dev", &PropertyMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stack `dev` has no `nodes` output: apply it first"
    );
    let broken = PropertyMap::from([("nodes".to_owned(), json!([{"name": "x"}]))]);
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
            std::fs::read_to_string(out.join(&file.path)).unwrap(),
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

/// Runs `command`, fails the test with its output unless it succeeds, returns its output.
fn succeeds(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{command:?}: {text}");
    text
}

fn rules_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/kafka-platform.test.yml")
}

#[test]
fn the_real_validators_accept_the_rendered_files() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dev");
    render::write(&out, &rendered("10.0.2.20")).unwrap();

    let rules = out.join("prometheus/rules/kafka-platform.yml");
    // `check config` also loads the rule files the configuration names (rules/*.yml).
    let checked = succeeds(
        Command::new(tool("promtool"))
            .args(["check", "config"])
            .arg(out.join("prometheus/prometheus.yml")),
    );
    assert!(checked.contains("SUCCESS: 1 rule files found"), "{checked}");
    let checked = succeeds(
        Command::new(tool("promtool"))
            .args(["check", "rules"])
            .arg(&rules),
    );
    assert!(checked.contains("SUCCESS: 13 rules found"), "{checked}");
    // A unit test per alert: fires on a failing series, silent on a healthy one.
    let tests = root.path().join("kafka-platform.test.yml");
    std::fs::copy(rules_tests(), &tests).unwrap();
    std::fs::copy(&rules, root.path().join("kafka-platform.yml")).unwrap();
    let tested = succeeds(
        Command::new(tool("promtool"))
            .args(["test", "rules"])
            .arg(&tests),
    );
    assert!(tested.contains("SUCCESS"), "{tested}");

    let amtool = |file: &Path| {
        succeeds(Command::new(tool("amtool")).arg("check-config").arg(file));
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

    let listed = ansible_inventory(root.path(), &out.join("ansible/hosts.yml"));
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
    // Reached at its private address through the platform node, its host key kept under its
    // name: what Ansible is told of it is known before its instance is made or replaced.
    assert_eq!(broker2["ansible_host"], "10.0.2.20");
    assert_eq!(
        broker2["ansible_ssh_common_args"],
        "-o ProxyJump=ec2-user@203.0.113.40 -o HostKeyAlias=dev-broker-2"
    );
    // A Connect node's key under its name and instance id: a replaced one is new to SSH.
    let connect = &listed["_meta"]["hostvars"]["ip-10-0-1-30.eu-central-1.compute.internal"];
    assert_eq!(
        connect["ansible_ssh_common_args"],
        "-o ProxyJump=ec2-user@203.0.113.40 -o HostKeyAlias=dev-connect-1-i-connect0"
    );
    let platform = &listed["_meta"]["hostvars"]["ip-10-0-1-40.eu-central-1.compute.internal"];
    assert_eq!(platform["ansible_host"], "203.0.113.40");
    assert!(
        platform.get("ansible_ssh_common_args").is_none(),
        "{platform}"
    );
    assert_eq!(broker2["kafka_broker_jmxexporter_port"], 9999);
    assert_eq!(broker2["ansible_user"], "ec2-user");
    assert_eq!(
        broker2["kafka_broker_custom_properties"]["min.insync.replicas"],
        2
    );
    // Host entries are the nodes playbook's, not variables nothing applies.
    assert!(broker2.get("kafka_platform_hosts").is_none());
    let nodes_playbook = yaml(contents(&rendered("10.0.2.20"), "ansible/nodes.yml"));
    let block = nodes_playbook[0]["tasks"]
        .as_sequence()
        .unwrap()
        .iter()
        .find_map(|task| task["ansible.builtin.blockinfile"]["block"].as_str())
        .unwrap();
    assert_eq!(block.lines().count(), 8);
    assert!(block.contains("10.0.2.20 ip-10-0-2-20.eu-central-1.compute.internal dev-broker-2\n"));
}

/// The rendered playbooks.
const PLAYBOOKS: [&str; 3] = [
    "ansible/nodes.yml",
    "ansible/platform.yml",
    "ansible/connect.yml",
];

#[test]
fn the_rendered_playbooks_pass_ansible_syntax_check_and_ansible_lint() {
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    for (name, config) in [("plaintext", dev()), ("sasl_ssl", sasl_ssl())] {
        // Shown with a failure's output.
        println!("the {name} platform's playbooks");
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("dev");
        render::write(&out, &render::render("dev", &config, &nodes).unwrap()).unwrap();
        for playbook in PLAYBOOKS {
            succeeds(
                ansible(root.path(), "ansible-playbook")
                    .arg("--syntax-check")
                    .arg("-i")
                    .arg(out.join("ansible/hosts.yml"))
                    .arg(out.join(playbook)),
            );
        }
        // The strictest profile, offline (nothing to install: only ansible.builtin).
        succeeds(
            ansible(root.path(), "ansible-lint")
                .args(["--offline", "--profile", "production", "--nocolor"])
                .args(PLAYBOOKS)
                .current_dir(&out),
        );
    }
}

/// The tests check the playbooks with the ansible-core a deployment runs.
#[test]
fn the_tests_ansible_is_the_deployment_s() {
    let setup =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh"))
            .unwrap();
    assert!(
        setup.contains(&format!(
            "ANSIBLE_CORE_VERSION=\"{}\"",
            kafka_components::deploy::ANSIBLE_CORE_VERSION
        )),
        "scripts/setup.sh pins another ansible-core than kafka_components::deploy::ANSIBLE_CORE_VERSION"
    );
}

/// An Ansible program with its scratch files in `scratch`.
fn ansible(scratch: &Path, program: &str) -> Command {
    let mut command = Command::new(tool(program));
    command
        .env("ANSIBLE_LOCAL_TEMP", scratch)
        .env("ANSIBLE_HOME", scratch)
        .env("XDG_CACHE_HOME", scratch)
        .env("ANSIBLE_CONFIG", scratch.join("dev/ansible/ansible.cfg"));
    command
}

/// What `ansible-inventory --list` reads from `inventory` (Ansible's scratch files in `scratch`).
fn ansible_inventory(scratch: &Path, inventory: &Path) -> Value {
    let listed = Command::new(tool("ansible-inventory"))
        .arg("-i")
        .arg(inventory)
        .arg("--list")
        .env("ANSIBLE_LOCAL_TEMP", scratch)
        .env("ANSIBLE_HOME", scratch)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "ansible-inventory: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    serde_json::from_slice(&listed.stdout).unwrap()
}

fn contents<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} is not rendered"))
        .contents
}

fn yaml(text: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// What the JMX exporter does with one MBean attribute line: the first rule whose pattern
/// matches names the sample (`$n` replaced by the captures, then lowercased and sanitised as
/// the exporter does, `_total` added to counters); no matching rule, no sample.
fn exported(rules: &serde_yaml_ng::Value, line: &str) -> Option<(usize, String)> {
    let lowercase = rules["lowercaseOutputName"].as_bool() == Some(true);
    let group_reference = regex::Regex::new(r"\$(\d)").unwrap();
    for (i, rule) in rules["rules"].as_sequence().unwrap().iter().enumerate() {
        let pattern = rule["pattern"].as_str().unwrap();
        // The exporter anchors nothing: it wraps every pattern in `^.*(?:…).*$`.
        let re = regex::Regex::new(&format!("^.*(?:{pattern}).*$")).unwrap();
        let Some(caps) = re.captures(line) else {
            continue;
        };
        // Java's `$1_total` is group 1, then `_total` (Rust's `expand` would read `1_total`).
        let mut name = group_reference
            .replace_all(rule["name"].as_str().unwrap(), |g: &regex::Captures<'_>| {
                let n: usize = g[1].parse().unwrap();
                caps.get(n).map_or("", |m| m.as_str()).to_owned()
            })
            .into_owned();
        if lowercase {
            name = name.to_lowercase();
        }
        let mut safe = String::new();
        for c in name.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            };
            if !(c == '_' && safe.ends_with('_')) {
                safe.push(c);
            }
        }
        if rule["type"].as_str() == Some("COUNTER") && !safe.ends_with("_total") {
            safe.push_str("_total");
        }
        return Some((i, safe));
    }
    None
}

/// Metric names in a PromQL expression: identifiers outside label matchers, strings,
/// ranges and grouping clauses that are not functions or keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let without = regex::Regex::new(
        r#""[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#,
    )
    .unwrap()
    .replace_all(expr, " ");
    let identifier = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?").unwrap();
    identifier
        .find_iter(&without)
        .map(|m| m.as_str())
        .filter(|token| !token.ends_with('('))
        .filter(|token| !["and", "or", "unless", "bool", "offset"].contains(token))
        .map(str::to_owned)
        .collect()
}

/// Every alert expression and dashboard query, with where it comes from.
fn queries(files: &[RenderedFile]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let rules = yaml(contents(files, "prometheus/rules/kafka-platform.yml"));
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            found.push((
                format!("alert {alert}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    for file in files
        .iter()
        .filter(|f| f.path.starts_with("grafana/dashboards/"))
    {
        let dashboard: Value = serde_json::from_str(&file.contents).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                found.push((
                    format!("{} panel {}", file.path, panel["title"]),
                    target["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    found
}

/// Metric names a real node_exporter serves: the Debian package scripts/setup.sh installs,
/// started on a free loopback port for the test.
fn node_exporter_metrics() -> BTreeSet<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut exporter = Command::new(tool("prometheus-node-exporter"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            write!(stream, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
            stream.read_to_string(&mut body).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    exporter.kill().unwrap();
    exporter.wait().unwrap();
    let names: BTreeSet<String> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains("node_cpu_seconds_total"),
        "no metrics from node_exporter: {body}"
    );
    names
}

#[test]
fn every_queried_metric_is_produced_by_an_exporter_rule_node_exporter_or_a_service() {
    let files = rendered("10.0.2.20");
    let fixtures = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mbeans.txt"),
    )
    .unwrap();
    let mut produced: BTreeSet<String> = BTreeSet::from(["up".to_owned()]);
    for (role, path) in [
        ("broker", "jmx/kafka_broker.yml"),
        ("controller", "jmx/kafka_controller.yml"),
        ("connect", "jmx/kafka_connect.yml"),
    ] {
        let rules = yaml(contents(&files, path));
        let mut used = BTreeSet::new();
        for line in fixtures.lines().filter(|l| !l.starts_with('#')) {
            let Some(bean) = line.strip_prefix(role).and_then(|l| l.strip_prefix(' ')) else {
                continue;
            };
            if let Some((rule, name)) = exported(&rules, bean) {
                used.insert(rule);
                produced.insert(name);
            }
        }
        let count = rules["rules"].as_sequence().unwrap().len();
        assert_eq!(used.len(), count, "{path}: a rule matches no {role} MBean");
    }
    // Per-topic and per-partition beans stay out (their number grows with every topic).
    let broker = yaml(contents(&files, "jmx/kafka_broker.yml"));
    for line in [
        "kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=orders><>Count: 4096",
        "kafka.log<type=Log, name=Size, topic=orders, partition=0><>Value: 1024",
    ] {
        assert_eq!(exported(&broker, line), None, "{line}");
    }
    produced.extend(node_exporter_metrics());
    for (_, names) in render::SERVICE_METRICS {
        produced.extend(names.iter().map(|n| (*n).to_owned()));
    }

    let queries = queries(&files);
    assert!(queries.len() > 30, "alerts and panels were found");
    for (place, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{place}: no metric in `{expr}`");
        for name in names {
            assert!(
                produced.contains(&name),
                "{place} queries `{name}`, which nothing exports ({expr})"
            );
        }
    }
    // The parser finds what it should.
    assert_eq!(
        metric_names(r#"sum by (node) (rate(a_total{node=~"$node"}[5m])) / on(node) b > 2 and c"#),
        BTreeSet::from(["a_total".to_owned(), "b".to_owned(), "c".to_owned()])
    );
}

#[test]
fn every_alert_has_a_unit_test_that_fires_and_one_that_stays_silent() {
    let files = rendered("10.0.2.20");
    let rules = yaml(contents(&files, "prometheus/rules/kafka-platform.yml"));
    let alerts: Vec<&str> = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(alerts.len(), 13);
    let tests = yaml(&std::fs::read_to_string(rules_tests()).unwrap());
    let labels_of = |series: &str| -> BTreeMap<String, String> {
        let inner = series
            .split_once('{')
            .map_or("", |(_, rest)| rest.trim_end_matches('}'));
        inner
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
            .collect()
    };
    for alert in alerts {
        let (mut fires, mut silent) = (false, false);
        for test in tests["tests"].as_sequence().unwrap() {
            let evals: Vec<_> = test["alert_rule_test"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|e| e["alertname"].as_str() == Some(alert))
                .collect();
            let expected: Vec<BTreeMap<String, String>> = evals
                .iter()
                .flat_map(|e| e["exp_alerts"].as_sequence().unwrap())
                .map(|a| serde_yaml_ng::from_value(a["exp_labels"].clone()).unwrap())
                .collect();
            if evals.is_empty() {
                continue;
            }
            fires |= !expected.is_empty();
            silent |= evals
                .iter()
                .any(|e| e["exp_alerts"].as_sequence().unwrap().is_empty());
            // A healthy series: one no expected alert stands for.
            silent |= test["input_series"].as_sequence().unwrap().iter().any(|s| {
                let series = labels_of(s["series"].as_str().unwrap());
                !expected.iter().any(|alert| {
                    alert
                        .iter()
                        .filter(|(k, _)| *k != "severity")
                        .all(|(k, v)| series.get(k).is_none_or(|s| s == v))
                })
            });
        }
        assert!(fires, "no unit test makes {alert} fire");
        assert!(
            silent,
            "no unit test shows {alert} silent on a healthy series"
        );
    }
}

#[test]
fn dashboards_select_nodes_from_the_graph() {
    let files = rendered("10.0.2.20");
    for (path, role) in [
        ("grafana/dashboards/kafka-broker.json", "broker"),
        ("grafana/dashboards/kafka-controller.json", "controller"),
        ("grafana/dashboards/kafka-connect.json", "connect"),
    ] {
        let dashboard: Value = serde_json::from_str(contents(&files, path)).unwrap();
        let variable = &dashboard["templating"]["list"][0];
        let count = if role == "connect" { 1 } else { 3 };
        let names: Vec<String> = (1..=count).map(|i| format!("dev-{role}-{i}")).collect();
        assert_eq!(variable["query"], names.join(","), "{path}");
        assert_eq!(variable["allValue"], names.join("|"), "{path}");
        let provider = contents(&files, "grafana/provisioning/datasources/prometheus.yml");
        let uid = yaml(provider)["datasources"][0]["uid"]
            .as_str()
            .unwrap()
            .to_owned();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert_eq!(panel["datasource"]["uid"], uid.as_str(), "{path}");
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                assert!(
                    expr.contains(r#"node=~"$node""#),
                    "{path}: {expr} ignores the node selection"
                );
                assert!(!expr.contains("10.0."), "{path}: {expr} names an address");
            }
        }
    }
}

/// The local environment's files.
fn rendered_local() -> Vec<RenderedFile> {
    render::render(
        "local",
        &local_config(),
        &kafka_components::local_nodes("local"),
    )
    .unwrap()
}

fn local_config() -> PlatformConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    PlatformConfig::load(&dir, "local").unwrap()
}

/// A `server.properties` as key → value.
fn properties(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_once('=').unwrap())
        .collect()
}

#[test]
fn each_local_kafka_node_s_server_properties_agree_with_the_inventory_s_facts() {
    let files = rendered_local();
    let inventory = yaml(contents(&files, "ansible/hosts.yml"));
    let voters = inventory["all"]["vars"]["kafka_controller_quorum_voters"]
        .as_str()
        .unwrap();
    assert_eq!(
        voters,
        "9991@127.0.0.1:29094,9992@127.0.0.1:29194,9993@127.0.0.1:29294"
    );
    // The inventory's ids and racks are the nodes' own.
    let mut checked = 0;
    for (group, id) in [
        ("kafka_controller", "node_id"),
        ("kafka_broker", "broker_id"),
    ] {
        for (_, host) in inventory[group]["hosts"].as_mapping().unwrap() {
            let name = host["kafka_platform_name"].as_str().unwrap();
            let p = properties(contents(&files, &format!("kafka/{name}/server.properties")));
            assert_eq!(
                p["node.id"],
                host[id].as_u64().unwrap().to_string(),
                "{name}"
            );
            if let Some(rack) = host["kafka_broker_custom_properties"]["broker.rack"].as_str() {
                assert_eq!(p["broker.rack"], rack, "{name}");
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked, 6,
        "every controller and broker is in the inventory once"
    );
    let nodes = kafka_components::local_nodes("local");
    for node in nodes
        .iter()
        .filter(|n| matches!(n.role, Role::Controller | Role::Broker))
    {
        let path = format!("kafka/{}/server.properties", node.name);
        let p = properties(contents(&files, &path));
        assert_eq!(p["controller.quorum.voters"], voters, "{path}");
        assert_eq!(p["process.roles"], node.role.name(), "{path}");
        let shift = 100 * (node.index - 1);
        match node.role {
            Role::Controller => {
                assert_eq!(p["node.id"], (9990 + node.index).to_string(), "{path}");
                assert_eq!(
                    p["listeners"],
                    format!("CONTROLLER://127.0.0.1:{}", 29094 + shift),
                    "{path}"
                );
            }
            _ => {
                assert_eq!(p["node.id"], node.index.to_string(), "{path}");
                assert_eq!(p["broker.rack"], node.zone, "{path}");
                assert_eq!(
                    p["advertised.listeners"],
                    format!(
                        "BROKER://127.0.0.1:{},INTERNAL://127.0.0.1:{}",
                        29091 + shift,
                        29092 + shift
                    ),
                    "{path}"
                );
                assert_eq!(p["min.insync.replicas"], "2", "{path}");
                assert_eq!(p["default.replication.factor"], "3", "{path}");
            }
        }
    }
    let zones: Vec<&str> = nodes
        .iter()
        .filter(|n| n.role == Role::Broker)
        .map(|n| n.zone.as_str())
        .collect();
    assert_eq!(zones, ["local-a", "local-b", "local-c"]);
    // The second node of each, PLAINTEXT and SASL_SSL, as reviewed files.
    let mut secured = local_config();
    secured.security.protocol = kafka_components::config::SecurityProtocol::SaslSsl;
    secured.security.credentials_dir =
        Some("/home/operator/.local/state/kafka-platform/local".to_owned());
    let secured = render::render("local", &secured, &nodes).unwrap();
    for (variant, files) in [("local", &files), ("local_sasl_ssl", &secured)] {
        for node in ["local-controller-2", "local-broker-2"] {
            let path = format!("kafka/{node}/server.properties");
            insta::with_settings!({
                snapshot_path => "../../snapshots/kafka-components",
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(
                    format!("{variant}__{}", path.replace('/', "__")),
                    contents(files, &path)
                );
            });
        }
    }
}

#[test]
fn the_local_platform_scrapes_what_runs_on_this_machine_and_the_validators_accept_it() {
    let files = rendered_local();
    let prometheus = yaml(contents(&files, "prometheus/prometheus.yml"));
    let jobs: Vec<(&str, Vec<&str>)> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|job| {
            let targets = job["static_configs"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|c| c["targets"].as_sequence().unwrap())
                .map(|t| t.as_str().unwrap())
                .collect();
            (job["job_name"].as_str().unwrap(), targets)
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("prometheus", vec!["localhost:29090"]),
            (
                "kafka-controller",
                vec!["127.0.0.1:29998", "127.0.0.1:30098", "127.0.0.1:30198"]
            ),
            (
                "kafka-broker",
                vec!["127.0.0.1:29999", "127.0.0.1:30099", "127.0.0.1:30199"]
            ),
            ("kafka-connect", vec!["127.0.0.1:27071"]),
            ("node", vec!["127.0.0.1:29100"]),
            ("kafka-admin-api", vec!["127.0.0.1:22020"]),
            ("http-source-connector", vec!["127.0.0.1:28084"]),
        ],
        "every Kafka JVM's exporter, each node on its own ports; node_exporter once for the one machine"
    );
    assert_eq!(prometheus["global"]["scrape_interval"].as_str(), Some("2s"));
    let connector: Value =
        serde_json::from_str(contents(&files, "connect/http-source-connector.json")).unwrap();
    assert_eq!(connector["config"]["listeners"], "http://127.0.0.1:28084");
    assert_eq!(connector["config"]["http.timer.interval.millis"], "2000");
    assert_eq!(
        connector["config"]["http.request.url"],
        "http://127.0.0.1:22020/topics"
    );
    let rules = contents(&files, "prometheus/rules/kafka-platform.yml");
    assert!(
        rules.contains("http_source_last_success_timestamp_seconds > 10\n        for: 5s\n"),
        "{rules}"
    );
    let alertmanager = contents(&files, "alertmanager/alertmanager.yml");
    assert!(alertmanager.contains("group_wait: 1s\n  group_interval: 2s\n"));

    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("local");
    render::write(&out, &files).unwrap();
    let checked = succeeds(
        Command::new(tool("promtool"))
            .args(["check", "config"])
            .arg(out.join("prometheus/prometheus.yml")),
    );
    assert!(checked.contains("SUCCESS: 1 rule files found"), "{checked}");
    succeeds(
        Command::new(tool("amtool"))
            .arg("check-config")
            .arg(out.join("alertmanager/alertmanager.yml")),
    );
}

const CREDENTIALS: &str = "/home/operator/.local/state/kafka-platform/dev";

fn sasl_ssl() -> PlatformConfig {
    let mut config = dev();
    config.security.protocol = kafka_components::config::SecurityProtocol::SaslSsl;
    config.security.credentials_dir = Some(CREDENTIALS.to_owned());
    config
}

#[test]
fn a_sasl_ssl_platform_renders_cp_ansibles_tls_and_scram_settings_and_no_secret() {
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    let plain = rendered("10.0.2.20");
    let files = render::render("dev", &sasl_ssl(), &nodes).unwrap();
    // Only Kafka's own files and the deployment's change; each is snapshotted.
    let changed: Vec<&str> = files
        .iter()
        .zip(&plain)
        .filter(|(secure, plain)| secure.contents != plain.contents)
        .map(|(secure, _)| secure.path.as_str())
        .collect();
    assert_eq!(
        changed,
        [
            "ansible/connect.yml",
            "ansible/hosts.yml",
            "ansible/nodes.yml",
            "ansible/platform.yml",
            "connect/connect-distributed.properties",
            "connect/http-source-connector.json",
            "deploy/deploy.sh",
            "systemd/http-source-connector.service",
            "systemd/kafka-admin-api.service"
        ]
    );
    for path in changed {
        insta::with_settings!({
            snapshot_path => "../../snapshots/kafka-components",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("sasl_ssl__{}", path.replace('/', "__")), contents(&files, path));
        });
    }
    for file in &files {
        assert!(
            !file.contents.to_lowercase().contains("password:")
                && !file.contents.contains("password="),
            "{} holds a password",
            file.path
        );
    }

    // cp-ansible reads it as its variables.
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("dev");
    render::write(&out, &files).unwrap();
    let listed = ansible_inventory(root.path(), &out.join("ansible/hosts.yml"));
    let hostvars = &listed["_meta"]["hostvars"];
    let broker2 = &hostvars["ip-10-0-2-20.eu-central-1.compute.internal"];
    assert_eq!(broker2["ssl_enabled"], true);
    assert_eq!(broker2["ssl_custom_certs"], true);
    assert_eq!(broker2["sasl_protocol"], "scram");
    assert_eq!(
        broker2["ssl_ca_cert_filepath"],
        format!("{CREDENTIALS}/ca.crt")
    );
    assert_eq!(
        broker2["ssl_signed_cert_filepath"],
        format!("{CREDENTIALS}/dev-broker-2.crt")
    );
    assert_eq!(
        broker2["ssl_key_filepath"],
        format!("{CREDENTIALS}/dev-broker-2.key")
    );
    for listener in ["broker", "internal"] {
        let listener = &broker2["kafka_broker_custom_listeners"][listener];
        assert_eq!(listener["ssl_enabled"], true);
        assert_eq!(listener["sasl_protocol"], "scram");
    }
    let controller = &hostvars["ip-10-0-1-10.eu-central-1.compute.internal"];
    assert_eq!(controller["kafka_controller_ssl_mutual_auth_enabled"], true);
    assert_eq!(controller["kafka_controller_sasl_protocol"], "none");
    assert_eq!(
        controller["ssl_key_filepath"],
        format!("{CREDENTIALS}/dev-controller-1.key")
    );
    // The platform node runs no Kafka listener: no certificate.
    let platform = &hostvars["ip-10-0-1-40.eu-central-1.compute.internal"];
    assert!(platform.get("ssl_key_filepath").is_none());
}

#[test]
fn a_sasl_ssl_platform_needs_valid_certificates_and_a_place_for_its_secrets() {
    let mut config = sasl_ssl();
    config.security.credentials_dir = Some("secrets".to_owned());
    config.security.certificate_validity_days = 4000;
    let refused = kafka_components::policy::check(&config)
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "`security.certificate_validity_days`: 4000 days is longer than the CA's 1825 (security.ca_validity_days): a node's certificate would outlive the CA that signed it\n\
         `security.credentials_dir`: `secrets` is not an absolute path: give one outside the repository"
    );
    config.security.credentials_dir = None;
    config.security.certificate_validity_days = 0;
    let refused = kafka_components::policy::check(&config)
        .unwrap_err()
        .to_string();
    assert_eq!(
        refused,
        "`security.certificate_validity_days`: a certificate valid for 0 days has expired when it is issued: give at least 1\n\
         `security.credentials_dir`: a SASL_SSL platform writes its keys and passwords there: set an absolute path outside the repository"
    );
}

/// The system files the platform playbook's monitoring part writes, as they were: put back,
/// and the services it started stopped, when the test ends (passed or not).
struct SystemFiles {
    saved: Vec<(PathBuf, Option<Vec<u8>>)>,
    rules: PathBuf,
    rules_existed: bool,
}

impl SystemFiles {
    fn save() -> Self {
        let saved = [
            "/etc/prometheus/prometheus.yml",
            "/etc/prometheus/alertmanager.yml",
            "/etc/default/prometheus",
            "/etc/default/prometheus-alertmanager",
        ]
        .into_iter()
        .map(|path| (PathBuf::from(path), std::fs::read(path).ok()))
        .collect();
        let rules = PathBuf::from("/etc/prometheus/rules");
        let rules_existed = rules.exists();
        Self {
            saved,
            rules,
            rules_existed,
        }
    }
}

impl Drop for SystemFiles {
    fn drop(&mut self) {
        for service in ["prometheus", "prometheus-alertmanager"] {
            let _ = Command::new("service").args([service, "stop"]).output();
        }
        for (path, contents) in &self.saved {
            let _ = match contents {
                Some(contents) => std::fs::write(path, contents),
                None => std::fs::remove_file(path),
            };
        }
        if !self.rules_existed {
            let _ = std::fs::remove_dir_all(&self.rules);
        }
    }
}

/// `GET path` on 127.0.0.1:`port`: the status line and the body, once something answers.
fn get(port: u16, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// Waits up to a minute for `check` to find something, failing the test with `what`.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within a minute: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The recap line of `host` in ansible-playbook's output.
fn recap<'a>(output: &'a str, host: &str) -> &'a str {
    output
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.starts_with(host))
        .unwrap_or_else(|| panic!("no recap for {host}:\n{output}"))
}

/// The platform playbook against this machine as the managed host: Prometheus and
/// Alertmanager from their Debian packages, with the rendered files, started through the
/// system's service manager, answering `/-/ready`; a second run changes nothing. As root
/// only (it installs packages and writes /etc); every file it wrote is put back and the
/// services stopped afterwards.
#[test]
fn the_platform_playbook_installs_and_starts_prometheus_and_alertmanager_here() {
    let root_user = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root_user.stdout).trim() != "0" {
        eprintln!(
            "skipped: the platform playbook's run needs root (it installs packages and writes /etc)"
        );
        return;
    }
    let mut config = dev();
    config.ports.prometheus = free_port();
    config.ports.alertmanager = free_port();
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("dev");
    render::write(&out, &render::render("dev", &config, &nodes).unwrap()).unwrap();
    let inventory = scratch.path().join("localhost.yml");
    std::fs::write(
        &inventory,
        "platform:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n",
    )
    .unwrap();

    let _restored = SystemFiles::save();
    let run = || {
        succeeds(
            ansible(scratch.path(), "ansible-playbook")
                .arg("-i")
                .arg(&inventory)
                .arg(out.join("ansible/platform.yml"))
                .args(["--tags", "monitoring"])
                .args(["-e", "kafka_platform_listen_host=127.0.0.1"]),
        )
    };
    let first = run();
    assert!(recap(&first, "localhost").contains("failed=0"), "{first}");

    for (name, port) in [
        ("Prometheus", config.ports.prometheus),
        ("Alertmanager", config.ports.alertmanager),
    ] {
        eventually(
            &format!("{name} on 127.0.0.1:{port} answers /-/ready"),
            || get(port, "/-/ready").filter(|(status, _)| status.contains(" 200 ")),
        );
    }
    // Prometheus runs the rendered configuration: its alert rules and its Alertmanager.
    eventually("Prometheus has the rendered alert rules", || {
        get(config.ports.prometheus, "/api/v1/rules")
            .filter(|(_, rules)| rules.contains("\"name\":\"InstanceDown\""))
    });
    let alertmanager = format!("localhost:{}", config.ports.alertmanager);
    eventually(
        "Prometheus sends alerts to the rendered Alertmanager",
        || {
            get(config.ports.prometheus, "/api/v1/alertmanagers")
                .filter(|(_, found)| found.contains(&alertmanager))
        },
    );

    let second = run();
    assert!(
        recap(&second, "localhost").contains("changed=0"),
        "a second run changed something:\n{second}"
    );
}

/// `deploy/deploy.sh` with a stand-in `ansible-playbook` in the virtualenv it makes (so it
/// makes none): how it calls Ansible, what it prints, how a failed step ends.
#[test]
fn the_deploy_script_runs_each_step_with_the_pinned_ansible_and_prints_its_recap() {
    let nodes = NodeFacts::from_outputs("dev", &outputs("10.0.2.20")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("dev");
    render::write(&out, &render::render("dev", &sasl_ssl(), &nodes).unwrap()).unwrap();
    let script = out.join("deploy/deploy.sh");
    succeeds(Command::new("sh").arg("-n").arg(&script));

    let venv = scratch.path().join(format!(
        "cache/ansible-core-{}/bin",
        kafka_components::deploy::ANSIBLE_CORE_VERSION
    ));
    std::fs::create_dir_all(&venv).unwrap();
    let playbook = venv.join("ansible-playbook");
    let executable = |path: &Path, text: &str| {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    let log_of = |step: &str| {
        let log = scratch
            .path()
            .join(format!("state/kafka-platform/dev/deploy-{step}.log"));
        std::fs::read_to_string(log).unwrap()
    };
    let stand_in = |exit: u8| {
        executable(
            &playbook,
            &format!(
                "#!/bin/sh\necho \"ARGS $*\"\necho \"CONFIG $ANSIBLE_CONFIG\"\necho 'PLAY RECAP ***'\necho 'host : ok=3 changed=1 unreachable=0 failed=0'\nexit {exit}\n"
            ),
        );
    };
    let run = |step: &str| {
        Command::new("sh")
            .arg(&script)
            .arg(step)
            .env("KAFKA_PLATFORM_CACHE", scratch.path().join("cache"))
            .env("XDG_STATE_HOME", scratch.path().join("state"))
            .env("KAFKA_PLATFORM_BIN_DIR", "/opt/bin")
            .output()
            .unwrap()
    };
    stand_in(0);
    let ran = run("platform");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    // Only the recap is printed (the step's output); the rest is in the log.
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "PLAY RECAP ***\nhost : ok=3 changed=1 unreachable=0 failed=0\n"
    );
    let log = log_of("platform");
    let dir = out.canonicalize().unwrap();
    let dir = dir.display();
    assert!(
        log.contains(&format!(
            "ARGS -i {dir}/ansible/hosts.yml -e @{CREDENTIALS}/secrets.yml -e kafka_platform_bin_dir=/opt/bin {dir}/ansible/platform.yml"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("CONFIG {dir}/ansible/ansible.cfg")),
        "{log}"
    );

    // Later runs of the kafka step: cp-ansible's rolling deployment (cp-ansible already
    // installed, as the stand-in ansible-galaxy says).
    let galaxy = venv.join("ansible-galaxy");
    executable(
        &galaxy,
        &format!(
            "#!/bin/sh\necho 'confluent.platform {}'\n",
            kafka_components::deploy::CP_ANSIBLE_VERSION
        ),
    );
    let rolled = Command::new("sh")
        .arg(&script)
        .args(["kafka", "rolling"])
        .env("KAFKA_PLATFORM_CACHE", scratch.path().join("cache"))
        .env("XDG_STATE_HOME", scratch.path().join("state"))
        .output()
        .unwrap();
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    let log = log_of("kafka");
    assert!(
        log.contains("-e deployment_strategy=rolling -e kafka_platform_bin_dir=")
            && log.contains(" confluent.platform.all"),
        "{log}"
    );

    // One replaced controller: its host key forgotten, then the nodes playbook and cp-ansible
    // limited to it, with the cluster's id another controller's meta.properties tells.
    let ansible = venv.join("ansible");
    executable(
        &ansible,
        "#!/bin/sh\necho \"AD-HOC $*\" >&2\necho 'host | CHANGED | rc=0 >>'\necho 'cluster.id=Xq3fQ'\n",
    );
    let home = scratch.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(
        home.join(".ssh/known_hosts"),
        "dev-controller-2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr\n\
         other ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr\n",
    )
    .unwrap();
    // The deployment's key reaches both hops through an agent of the run's own, gone after.
    let key = scratch.path().join("deploy-key");
    succeeds(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key),
    );
    let agent_file = scratch.path().join("agent");
    executable(
        &playbook,
        &format!(
            "#!/bin/sh\necho \"ARGS $*\"\necho \"AGENT $(ssh-add -l)\"\necho \"$SSH_AUTH_SOCK\" >{}\necho 'PLAY RECAP ***'\n",
            agent_file.display()
        ),
    );
    let host = "ip-10-0-2-10.eu-central-1.compute.internal";
    let onto_node = |role: &str| {
        Command::new("sh")
            .arg(&script)
            .args(["node", host, "dev-controller-2", role])
            .env("KAFKA_PLATFORM_CACHE", scratch.path().join("cache"))
            .env("XDG_STATE_HOME", scratch.path().join("state"))
            .env("HOME", &home)
            .env("ANSIBLE_PRIVATE_KEY_FILE", &key)
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap()
    };
    let deployed = onto_node("controller");
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let log = log_of("node-dev-controller-2");
    assert!(
        log.contains(&format!("AD-HOC kafka_controller:!{host} ")),
        "{log}"
    );
    for playbook in [
        format!("{dir}/ansible/nodes.yml"),
        "confluent.platform.all".to_owned(),
    ] {
        assert!(
            log.contains(&format!("--limit {host} -e clusterid=Xq3fQ {playbook}\n")),
            "{playbook}: {log}"
        );
    }
    assert!(log.contains("AGENT 256 SHA256:"), "{log}");
    let socket = std::fs::read_to_string(&agent_file).unwrap();
    assert!(
        !Path::new(socket.trim()).exists(),
        "the run's agent is left: {socket}"
    );
    let known = std::fs::read_to_string(home.join(".ssh/known_hosts")).unwrap();
    assert!(
        !known.contains("dev-controller-2") && known.contains("other"),
        "{known}"
    );
    let broker = onto_node("broker");
    assert!(broker.status.success());
    let log = log_of("node-dev-controller-2");
    assert!(
        !log.contains("AD-HOC") && !log.contains("clusterid"),
        "{log}"
    );

    for wrong in [
        &["everything"][..],
        &["platform", "rolling"],
        &["node", host, "dev-controller-2"],
        &["node", host, "dev-connect-1", "connect"],
    ] {
        let refused = Command::new("sh")
            .arg(&script)
            .args(wrong)
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{wrong:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(
                "usage: deploy.sh nodes|kafka|platform|connect, deploy.sh kafka rolling, or deploy.sh node HOST NAME controller|broker"
            )
        );
    }

    stand_in(2);
    let failed = run("connect");
    assert_eq!(failed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(
        said.contains("the connect step failed: see ")
            && said.contains("deploy-connect.log")
            && said.contains("ARGS "),
        "{said}"
    );
}

#[test]
fn custom_properties_reach_each_role_s_properties_and_the_inventory_as_written() {
    let file = |config: &PlatformConfig| {
        let mut text = toml::to_string(config).unwrap();
        text.push_str(
            "\n[kafka_broker_custom_properties]\n\"log.retention.hours\" = 72\n\"num.io.threads\" = \"3\"\n\"compression.type\" = 'say \"zstd\"'\n\n[kafka_controller_custom_properties]\n\"metadata.log.segment.ms\" = 600000\n",
        );
        PlatformConfig::parse(&text, Path::new("custom.toml")).unwrap()
    };
    // On this machine: each broker's and controller's server.properties, a default of the
    // platform's (num.io.threads) replaced where it stood.
    let local = file(&local_config());
    let files = render::render("local", &local, &kafka_components::local_nodes("local")).unwrap();
    let broker = properties(contents(&files, "kafka/local-broker-2/server.properties"));
    assert_eq!(broker["log.retention.hours"], "72");
    assert_eq!(broker["num.io.threads"], "3");
    assert_eq!(broker["compression.type"], "say \"zstd\"");
    assert!(!broker.contains_key("metadata.log.segment.ms"));
    let text = contents(&files, "kafka/local-broker-2/server.properties");
    assert_eq!(text.matches("num.io.threads=").count(), 1, "{text}");
    let controller = properties(contents(
        &files,
        "kafka/local-controller-1/server.properties",
    ));
    assert_eq!(controller["metadata.log.segment.ms"], "600000");
    assert!(!controller.contains_key("log.retention.hours"));
    // On AWS: cp-ansible's variables of the same names, as Ansible reads them.
    let aws = file(&dev());
    let files = render::render(
        "dev",
        &aws,
        &NodeFacts::from_outputs("dev", &outputs("10.0.2.21")).unwrap(),
    )
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let inventory = scratch.path().join("hosts.yml");
    std::fs::write(&inventory, contents(&files, "ansible/hosts.yml")).unwrap();
    let listed = ansible_inventory(scratch.path(), &inventory);
    let host = |name: &str| {
        let hosts = listed["_meta"]["hostvars"].as_object().unwrap();
        hosts
            .values()
            .find(|vars| vars["kafka_platform_name"] == name)
            .unwrap()
            .clone()
    };
    let broker = &host("dev-broker-1")["kafka_broker_custom_properties"];
    assert_eq!(broker["log.retention.hours"], "72");
    assert_eq!(broker["compression.type"], "say \"zstd\"");
    assert_eq!(
        broker["broker.rack"].as_str().map(str::is_empty),
        Some(false)
    );
    let vars = &host("dev-controller-1")["kafka_controller_custom_properties"];
    assert_eq!(vars["metadata.log.segment.ms"], "600000");
}
