//! Policy checks: a table of bad settings and the exact refusal each must produce.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::Path;

use kafka_components::{KafkaPlatform, PlatformConfig, Role};

/// The text of the dev fixture.
fn dev_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dev.toml"))
        .unwrap()
}

fn dev() -> PlatformConfig {
    PlatformConfig::parse(&dev_text(), Path::new("tests/fixtures/dev.toml")).unwrap()
}

fn refusals(change: impl FnOnce(&mut PlatformConfig)) -> Vec<String> {
    refusals_of(dev(), change)
}

/// What the policies say of `config` once `change` is made to it.
fn refusals_of(
    mut config: PlatformConfig,
    change: impl FnOnce(&mut PlatformConfig),
) -> Vec<String> {
    change(&mut config);
    match kafka_components::policy::check(&config) {
        Ok(()) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_fixture_environments_and_the_sandbox_example_pass_every_policy() {
    assert_eq!(refusals(|_| {}), Vec::<String>::new());
    for env in ["dev", "prod"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let config = PlatformConfig::load(&dir, env).unwrap();
        assert!(kafka_components::policy::check(&config).is_ok(), "{env}");
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let sandbox = PlatformConfig::load(&examples, "sandbox").unwrap();
    assert!(
        kafka_components::policy::check(&sandbox).is_ok(),
        "the sandbox example"
    );
}

#[test]
fn each_lesson_of_the_old_platform_is_refused_with_the_field_to_change() {
    type Case = (
        &'static str,
        Box<dyn FnOnce(&mut PlatformConfig)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a broker with 4 GiB",
            Box::new(|c| c.aws_mut().unwrap().nodes.broker.instance_type = "t3.medium".into()),
            "`nodes.broker.instance_type`: t3.medium has 4 GiB of memory; a broker runs a Kafka JVM and the JMX exporter and needs at least 8 GiB (smaller nodes were OOM-killed): choose e.g. m7i-flex.large",
        ),
        (
            "a controller with 2 GiB",
            Box::new(|c| c.aws_mut().unwrap().nodes.controller.instance_type = "t3.small".into()),
            "`nodes.controller.instance_type`: t3.small has 2 GiB of memory; a controller runs a Kafka JVM and the JMX exporter and needs at least 8 GiB (smaller nodes were OOM-killed): choose e.g. m7i-flex.large",
        ),
        (
            "an instance type not in the table",
            Box::new(|c| c.aws_mut().unwrap().nodes.connect.instance_type = "x9.huge".into()),
            "`nodes.connect.instance_type`: `x9.huge` is not in the instance memory table: use a listed type (e.g. m7i-flex.large) or give its memory as nodes.connect.memory_gib",
        ),
        (
            "an unlisted type whose stated memory is too small",
            Box::new(|c| {
                let broker = &mut c.aws_mut().unwrap().nodes.broker;
                broker.instance_type = "x9.small".into();
                broker.memory_gib = Some(4);
            }),
            "`nodes.broker.instance_type`: x9.small has 4 GiB of memory; a broker runs a Kafka JVM and the JMX exporter and needs at least 8 GiB (smaller nodes were OOM-killed): choose e.g. m7i-flex.large",
        ),
        (
            "JMX port equal to an exporter port",
            Box::new(|c| c.ports.jmx = 7071),
            "`ports.jmx`: the native JMX port 7071 is also `ports.jmx_exporter_connect`: the JVM and the exporter cannot share a port; pick another",
        ),
        (
            "two broker listeners on one port",
            Box::new(|c| c.ports.broker_client = 9091),
            "`ports.broker_client`: 9091 is also `ports.broker_internal`, and both listen on the same node: pick another",
        ),
        (
            "the connector on Connect's REST port",
            Box::new(|c| c.ports.http_source_connector = 8083),
            "`ports.http_source_connector`: 8083 is also `ports.connect_rest`, and both listen on the same node: pick another",
        ),
        (
            "Grafana on the node exporter's port",
            Box::new(|c| c.ports.grafana = 9100),
            "`ports.grafana`: 9100 is also `ports.node_exporter`, and both listen on the same node: pick another",
        ),
        (
            "Prometheus on SSH's port",
            Box::new(|c| c.ports.prometheus = 22),
            "`ports.prometheus`: 22 is also `SSH`, and both listen on the same node: pick another",
        ),
        (
            "Connect's REST API on the brokers' client port",
            Box::new(|c| c.ports.connect_rest = 9092),
            "`ports.connect_rest`: 9092 is also `ports.broker_client`, and the Kafka nodes share a security group, whose rule for one would open the other on every one of them: pick another",
        ),
        (
            "more controllers than a zone has addresses for",
            Box::new(|c| c.aws_mut().unwrap().nodes.controller.count = Some(31)),
            "`nodes.controller.count`: 31 controllers over 3 zone(s) is more than the 10 addresses each zone's /24 keeps for the role: use at most 30, or list more zones",
        ),
        (
            "a custom property the platform sets",
            Box::new(|c| {
                c.kafka
                    .broker_properties
                    .insert("min.insync.replicas".into(), "1".into());
            }),
            "`kafka_broker_custom_properties.\"min.insync.replicas\"`: the platform sets it from `kafka.min_insync_replicas`: remove it here",
        ),
        (
            "a custom property that is not a name",
            Box::new(|c| {
                c.kafka
                    .controller_properties
                    .insert("log retention".into(), "1".into());
            }),
            "`kafka_controller_custom_properties.\"log retention\"`: is not a property name (letters, digits, `.`, `_` and `-`)",
        ),
        (
            "port zero",
            Box::new(|c| c.ports.admin_api = 0),
            "`ports.admin_api`: port 0 is not a port a service can listen on: pick 1-65535",
        ),
        (
            "no replicas",
            Box::new(|c| c.kafka.replication_factor = 0),
            "`kafka.replication_factor`: 0 replicas keep no data: use at least 1 (3 in production)",
        ),
        (
            "no in-sync replica",
            Box::new(|c| c.kafka.min_insync_replicas = 0),
            "`kafka.min_insync_replicas`: 0 acknowledges writes no replica has: use at least 1",
        ),
        (
            "an empty zone",
            Box::new(|c| c.aws_mut().unwrap().network.availability_zones[1] = String::new()),
            "`network.availability_zones[1]`: is empty: name a zone, e.g. eu-central-1a",
        ),
        (
            "a zone twice",
            Box::new(|c| {
                c.aws_mut().unwrap().network.availability_zones[2] =
                    c.aws_mut().unwrap().network.availability_zones[0].clone()
            }),
            "`network.availability_zones[2]`: `eu-central-1a` is listed twice: each zone gets one subnet",
        ),
        (
            "an empty region",
            Box::new(|c| c.aws_mut().unwrap().aws.region = String::new()),
            "`aws.region`: is empty: name a region, e.g. eu-central-1",
        ),
        (
            "an empty endpoint",
            Box::new(|c| c.aws_mut().unwrap().aws.endpoint_url = Some(String::new())),
            "`aws.endpoint_url`: is empty: remove it to use AWS, or give the emulator's URL",
        ),
        (
            "an empty login user",
            Box::new(|c| c.aws_mut().unwrap().ssh.user = Some(" ".into())),
            "`ssh.user`: is empty: remove it (the image's default `admin`) or name the login user",
        ),
        (
            "an even quorum",
            Box::new(|c| c.aws_mut().unwrap().nodes.controller.count = Some(4)),
            "`nodes.controller.count`: 4 controllers cannot form a fault-tolerant KRaft quorum: use an odd number, at least 3",
        ),
        (
            "a single controller",
            Box::new(|c| c.aws_mut().unwrap().nodes.controller.count = Some(1)),
            "`nodes.controller.count`: 1 controllers cannot form a fault-tolerant KRaft quorum: use an odd number, at least 3",
        ),
        (
            "nodes in two zones",
            Box::new(|c| c.aws_mut().unwrap().network.availability_zones.truncate(2)),
            "`network.availability_zones`: 2 zone(s): controllers and brokers must spread over 3 zones to survive losing one; list 3 (or set allow_fewer_than_three_zones for a sandbox)",
        ),
        (
            "replication above the broker count",
            Box::new(|c| c.aws_mut().unwrap().nodes.broker.count = Some(2)),
            "`kafka.replication_factor`: 3 replicas cannot be placed on 2 broker(s): lower it or add brokers",
        ),
        (
            "min.insync equal to the replication factor",
            Box::new(|c| c.kafka.min_insync_replicas = 3),
            "`kafka.min_insync_replicas`: 3 with replication factor 3 stops writes as soon as one replica is down: use at most 2",
        ),
        (
            "the whole internet as operator",
            Box::new(|c| c.aws_mut().unwrap().network.operator_cidr = "0.0.0.0/0".parse().unwrap()),
            "`network.operator_cidr`: 0.0.0.0/0 opens SSH and the monitoring ports to the whole internet: use your address (e.g. 203.0.113.7/32), or set allow_open_operator_cidr",
        ),
        (
            "no room for the subnets",
            Box::new(|c| c.aws_mut().unwrap().network.vpc_cidr = "10.0.0.0/24".parse().unwrap()),
            "`network.vpc_cidr`: 10.0.0.0/24 has no room for a /24 per zone (3 zones): use a larger block, e.g. /16",
        ),
        (
            "a receiver that is not a URL",
            Box::new(|c| {
                c.alerting.receivers = vec![kafka_components::config::Receiver {
                    name: "ops".into(),
                    webhook_url: "chat.example/hook".into(),
                }]
            }),
            "`alerting.receivers[0].webhook_url`: `chat.example/hook` is not an http(s) URL",
        ),
        (
            "zero brokers",
            Box::new(|c| {
                c.aws_mut().unwrap().nodes.broker.count = Some(0);
                c.kafka.replication_factor = 0;
            }),
            "`nodes.broker.count`: the platform needs at least one broker",
        ),
        (
            "no platform node",
            Box::new(|c| c.aws_mut().unwrap().nodes.platform.count = Some(0)),
            "`nodes.platform.count`: 0 platform nodes: use 1 (it runs the monitoring and the admin API, and SSH reaches the other nodes through it)",
        ),
    ];
    for (what, change, expected) in cases {
        let found = refusals(change);
        assert!(
            found.iter().any(|f| f == expected),
            "{what}: expected\n{expected}\ngot\n{found:#?}"
        );
    }
}

#[test]
fn opt_outs_are_explicit() {
    assert!(
        refusals(|c| {
            c.aws_mut().unwrap().network.operator_cidr = "0.0.0.0/0".parse().unwrap();
            c.aws_mut().unwrap().network.allow_open_operator_cidr = true;
        })
        .is_empty()
    );
    assert!(
        refusals(|c| {
            c.aws_mut().unwrap().network.availability_zones.truncate(1);
            c.aws_mut().unwrap().network.allow_fewer_than_three_zones = true;
        })
        .is_empty()
    );
}

#[test]
fn a_malformed_file_names_the_file_and_the_field() {
    let path = Path::new("envs/broken.toml");
    let text = dev_text();
    let typo = text.replace(
        "instance_type = \"t3.small\"",
        "instance_typ = \"t3.small\"",
    );
    let err = PlatformConfig::parse(&typo, path).unwrap_err().to_string();
    assert!(err.starts_with("envs/broken.toml: "), "{err}");
    assert!(err.contains("unknown field `instance_typ`"), "{err}");
    assert!(err.contains("line "), "{err}");
    let err = PlatformConfig::parse("[aws]\nregion = 3\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid type: integer `3`, expected a string"),
        "{err}"
    );
    let window = |value: &str| {
        let edited = text.replace(
            "[aws]\n",
            &format!("[aws]\nconsistency_window = \"{value}\"\n"),
        );
        PlatformConfig::parse(&edited, path).map(|c| c.aws().and_then(|a| a.aws.consistency_window))
    };
    assert_eq!(
        window("1m 30s").unwrap(),
        Some(std::time::Duration::from_secs(90))
    );
    let err = window("soon").unwrap_err().to_string();
    assert!(
        err.contains("`soon` is not a duration") && err.contains("consistency_window"),
        "{err}"
    );
    // Addresses are typed when the file is read: a malformed one names its field.
    for (written, reason) in [
        (
            "10.0.0.0",
            "`10.0.0.0` is not an IPv4 network in CIDR notation (like 10.0.0.0/16)",
        ),
        (
            "10.0.0.0/33",
            "`10.0.0.0/33` is not an IPv4 network in CIDR notation",
        ),
        (
            "10.0.3.0/16",
            "`10.0.3.0/16` has host bits set: did you mean 10.0.0.0/16?",
        ),
    ] {
        let edited = text.replace(
            "vpc_cidr = \"10.0.0.0/16\"",
            &format!("vpc_cidr = \"{written}\""),
        );
        let err = PlatformConfig::parse(&edited, path)
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason) && err.contains("vpc_cidr"), "{err}");
    }
}

#[test]
fn nodes_are_spread_over_the_zones_with_fixed_addresses_and_operator_names() {
    let mut stack = iac_core::Stack::new("dev");
    let mut config = dev();
    config.aws_mut().unwrap().nodes.broker.count = Some(5);
    let platform = KafkaPlatform::register(&mut stack, &config, "rendered").unwrap();
    let brokers: Vec<(String, String, String)> = platform
        .nodes
        .iter()
        .filter(|n| n.role == Role::Broker)
        .map(|n| (n.name.clone(), n.zone.clone(), n.private_ip.to_string()))
        .collect();
    assert_eq!(
        brokers,
        [
            (
                "broker-1".into(),
                "eu-central-1a".into(),
                "10.0.1.20".into()
            ),
            (
                "broker-2".into(),
                "eu-central-1b".into(),
                "10.0.2.20".into()
            ),
            (
                "broker-3".into(),
                "eu-central-1c".into(),
                "10.0.3.20".into()
            ),
            (
                "broker-4".into(),
                "eu-central-1a".into(),
                "10.0.1.21".into()
            ),
            (
                "broker-5".into(),
                "eu-central-1b".into(),
                "10.0.2.21".into()
            ),
        ]
    );
    let controllers: Vec<String> = platform
        .nodes
        .iter()
        .filter(|n| n.role == Role::Controller)
        .map(|n| n.zone.clone())
        .collect();
    assert_eq!(
        controllers,
        ["eu-central-1a", "eu-central-1b", "eu-central-1c"],
        "one controller per zone"
    );
    let program = stack.build().unwrap();
    let names: Vec<&str> = program.topological_names().collect();
    for expected in [
        "vpc",
        "igw",
        "kafka-sg",
        "platform-sg",
        "kafka-jmx-exporter-broker",
        "platform-ssh",
        "node-profile",
        "platform-1",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// The local environment (a copy of the shipped `stacks/envs/local.toml`).
fn local() -> PlatformConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    PlatformConfig::load(&dir, "local").unwrap()
}

fn local_refusals(change: impl FnOnce(&mut PlatformConfig)) -> Vec<String> {
    refusals_of(local(), change)
}

#[test]
fn a_local_environment_is_checked_as_one_machine_without_weakening_aws() {
    let config = local();
    assert!(matches!(config.site, kafka_components::Site::Local(_)));
    assert_eq!(
        Role::ALL.map(|r| config.count(r)),
        [3, 3, 1, 1],
        "the seed's topology: 3 controllers, 3 brokers, a Connect worker, a platform node"
    );
    assert_eq!(local_refusals(|_| {}), Vec::<String>::new());
    // Every service shares 127.0.0.1: ports of different roles may not meet.
    assert_eq!(
        local_refusals(|c| c.ports.prometheus = c.ports.broker_client),
        [
            "`ports.prometheus`: 29092 is also `ports.broker_client`, and both listen on this machine: pick another"
        ]
    );
    // The second and third broker listen 100 and 200 above the first: those ports are taken
    // too, and the field to change is named.
    assert_eq!(
        local_refusals(|c| c.ports.admin_api = c.ports.broker_client + 200),
        [
            "`ports.admin_api`: 29292 is also `ports.broker_client`, and both listen on this machine: pick another"
        ]
    );
    assert_eq!(
        local_refusals(|c| c.ports.jmx_exporter_broker = 65400),
        [
            "`ports.jmx_exporter_broker`: the third node of its role listens on it + 200, past 65535: pick a lower port"
        ]
    );
    // A port this machine may lend to any outgoing connection is refused before it is lent
    // (seen: a broker's JMX exporter failing to bind a port a client connection held).
    let outgoing = kafka_components::policy::ephemeral_ports();
    let lent = u16::try_from(*outgoing.start() + 10).unwrap();
    assert_eq!(
        local_refusals(|c| c.ports.jmx_exporter_broker = lent),
        [format!(
            "`ports.jmx_exporter_broker`: {lent} is among the ports this machine lends to outgoing connections ({}-{}, net.ipv4.ip_local_port_range), so any connection may hold it when the service starts: pick a port below {}",
            outgoing.start(),
            outgoing.end(),
            outgoing.start() - 200
        )]
    );
    // Replication as in production, checked as on AWS.
    assert_eq!(
        local_refusals(|c| c.kafka.replication_factor = 4),
        [
            "`kafka.replication_factor`: 4 replicas cannot be placed on 3 broker(s): lower it or add brokers"
        ]
    );
    assert_eq!(
        local_refusals(|c| c.kafka.min_insync_replicas = 3),
        [
            "`kafka.min_insync_replicas`: 3 with replication factor 3 stops writes as soon as one replica is down: use at most 2"
        ]
    );
}

#[test]
fn a_local_kafka_heap_too_small_to_start_is_refused_naming_its_field() {
    let refused = local_refusals(|c| {
        let kafka_components::Site::Local(site) = &mut c.site else {
            unreachable!("local.toml is a local environment")
        };
        site.heap.broker_mib = 64;
        site.heap.controller_mib = 100;
    });
    assert_eq!(
        refused,
        [
            "`local.heap.controller_mib`: 100 MiB is too small for a controller (it runs out of memory starting): give it at least 192",
            "`local.heap.broker_mib`: 64 MiB is too small for a broker (it runs out of memory starting): give it at least 256",
        ]
    );
}

#[test]
fn timings_that_would_raise_false_alarms_are_refused() {
    assert_eq!(
        local_refusals(|c| c.monitoring.source_stalled_after = std::time::Duration::from_secs(3)),
        [
            "`monitoring.source_stalled_after`: 3s is less than two polls of the connector (connector.poll_interval = 2s): a healthy connector would raise ConnectorSourceStalled between polls; use at least 4s"
        ]
    );
    assert_eq!(
        refusals(|c| c.monitoring.scrape_interval = std::time::Duration::from_millis(100)),
        ["`monitoring.scrape_interval`: is under a second: use at least \"1s\""]
    );
}

#[test]
fn a_deployment_needs_machines_an_image_cp_ansible_supports_and_this_machine_s_architecture() {
    let deploying = |c: &mut PlatformConfig| {
        if let Some(site) = c.aws_mut() {
            site.deploy.enabled = true;
        }
    };
    // dev: the emulator, Amazon Linux 2023.
    assert_eq!(
        refusals(deploying),
        [
            "`deploy.enabled`: the instances of an emulator (aws.endpoint_url) are not machines to deploy onto: set `enabled = false` under [deploy]",
            "`ami.name`: `al2023-ami-ecs-hvm-*-x86_64` is not an image cp-ansible deploys onto (it needs Python 3.10 or later on every node): choose Debian 12, Debian 13, Ubuntu 22.04, Ubuntu 24.04 (e.g. `debian-12-amd64-*`), or set `enabled = false` under [deploy]"
        ]
    );
    let on_aws = |c: &mut PlatformConfig| {
        deploying(c);
        if let Some(site) = c.aws_mut() {
            site.aws.endpoint_url = None;
            site.ami.name =
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*".to_owned();
        }
    };
    assert_eq!(refusals(on_aws), Vec::<String>::new());
    let elsewhere = if std::env::consts::ARCH == "x86_64" {
        "arm64"
    } else {
        "x86_64"
    };
    let refused = refusals(|c| {
        on_aws(c);
        if let Some(site) = c.aws_mut() {
            site.ami.architecture = Some(elsewhere.to_owned());
        }
    });
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("`ami.architecture`: the services are built on this machine"),
        "{refused:?}"
    );
}

#[test]
fn an_environment_runs_on_aws_or_on_this_machine_never_half_of_each() {
    let path = Path::new("envs/mixed.toml");
    let dev = dev_text();
    let mixed = format!("{dev}\n[local]\n");
    let err = PlatformConfig::parse(&mixed, path).unwrap_err().to_string();
    assert!(
        err.contains("envs/mixed.toml")
            && err.contains("a local environment ([local]) has no [aws], [network], [ssh], [ami], [nodes] or [deploy] table"),
        "{err}"
    );
    let start = dev.find("[ami]").unwrap();
    let end = start + dev[start..].find("\n[nodes").unwrap();
    let no_ami = format!("{}{}", &dev[..start], &dev[end..]);
    let err = PlatformConfig::parse(&no_ami, path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing [ami]: an AWS environment needs [aws], [network], [ssh], [ami] and [nodes]; one on this machine needs [local] instead"),
        "{err}"
    );
    let err = PlatformConfig::parse("[local]\nbuidl = \"make\"\n", path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `buidl`"), "{err}");
}

/// Why registering the local platform of `config` is refused.
fn local_registration_refused(config: &PlatformConfig) -> String {
    let mut stack = iac_core::Stack::new("local");
    kafka_components::LocalPlatform::register(&mut stack, config, "rendered", "local.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_local_program_that_is_not_there_is_refused_with_where_to_get_it() {
    let mut config = local();
    let kafka_components::Site::Local(site) = &mut config.site else {
        unreachable!("local.toml is a local environment")
    };
    site.programs.prometheus = "no-such-prometheus".into();
    site.programs.java = "no-such-java".into();
    let empty = tempfile::tempdir().unwrap();
    site.programs.kafka = empty.path().display().to_string();
    let refused = local_registration_refused(&config);
    assert!(
        refused.contains("`local.programs.java`: `no-such-java` is not there: install Java 17 or later (Debian: openjdk-17-jre-headless), or name where it is")
            && refused.contains("`local.programs.prometheus`: `no-such-prometheus` is not there: install the Debian package prometheus, or name where it is")
            && refused.contains(&format!("`local.programs.kafka`: `{}` has no Kafka server jar in libs/: `KAFKA_PLATFORM_KAFKA=1 scripts/setup.sh` fetches Kafka with Maven", empty.path().display())),
        "{refused}"
    );
}

#[test]
fn a_java_older_than_17_is_refused_with_what_kafka_needs() {
    // A `java` that says it is Java 11, as `java -XshowSettings:properties -version` does.
    let dir = tempfile::tempdir().unwrap();
    let java = dir.path().join("java");
    std::fs::write(
        &java,
        "#!/bin/sh\necho '    java.specification.version = 11' >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(&java, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut config = local();
    let kafka_components::Site::Local(site) = &mut config.site else {
        unreachable!("local.toml is a local environment")
    };
    site.programs.java = java.display().to_string();
    let refused = local_registration_refused(&config);
    assert!(
        refused.contains(&format!(
            "`local.programs.java`: `{}` is Java 11: Kafka 4.1 needs Java 17 or later",
            java.display()
        )),
        "{refused}"
    );
}

#[test]
fn an_unlisted_instance_type_with_its_memory_stated_and_an_empty_group_pass() {
    let mut config = dev();
    let nodes = &mut config.aws_mut().unwrap().nodes;
    nodes.broker.instance_type = "x9.large".into();
    nodes.broker.memory_gib = Some(16);
    // No Connect worker: its type is never launched, so it is not checked.
    nodes.connect.count = Some(0);
    nodes.connect.instance_type = "t3.nano".into();
    assert_eq!(kafka_components::policy::check(&config), Ok(()));
}

#[test]
fn the_handle_exposes_the_network_and_identity_for_a_stack_s_own_resources() {
    let mut stack = iac_core::Stack::new("dev");
    let platform = KafkaPlatform::register(&mut stack, &dev(), "rendered").unwrap();
    let zones: Vec<(&str, String, Vec<&str>)> = platform
        .network
        .subnets
        .iter()
        .map(|s| {
            let from = s.id.dependencies().map(|r| r.name()).collect();
            (s.zone.as_str(), s.cidr.to_string(), from)
        })
        .collect();
    assert_eq!(
        zones,
        [
            (
                "eu-central-1a",
                "10.0.1.0/24".to_owned(),
                vec!["subnet-eu-central-1a"]
            ),
            (
                "eu-central-1b",
                "10.0.2.0/24".to_owned(),
                vec!["subnet-eu-central-1b"]
            ),
            (
                "eu-central-1c",
                "10.0.3.0/24".to_owned(),
                vec!["subnet-eu-central-1c"]
            )
        ]
    );
    assert_eq!(platform.key_pair.resource_name(), "key");
    assert_eq!(platform.instance_profile.resource_name(), "node-profile");
    assert!(platform.credentials.is_none(), "dev is PLAINTEXT");
}

#[test]
fn secrets_inside_the_working_directory_are_refused_before_anything_is_registered() {
    let mut config = local();
    let here = std::env::current_dir().unwrap();
    config.security.credentials_dir = Some(here.join("secrets").display().to_string());
    let refused = kafka_components::policy::check_on_this_machine(&config)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!(
            "`security.credentials_dir`: {} is inside the working directory {}: keys and passwords go outside the repository",
            here.join("secrets").display(),
            here.display()
        )),
        "{refused}"
    );
    // The file alone passes: where it is run from is this machine's check.
    assert!(kafka_components::policy::check(&config).is_ok());
    let mut stack = iac_core::Stack::new("local");
    assert!(
        kafka_components::LocalPlatform::register(&mut stack, &config, "rendered", "local.toml")
            .is_err()
    );
    assert!(stack.build().unwrap().is_empty(), "nothing registered");
}

/// `--skip-deploy` leaves out what `deploy::command_names` names: exactly the deployment's
/// commands the platform registers, its steps and one per controller and broker.
#[test]
fn the_deployment_s_command_names_are_the_commands_it_registers() {
    let mut stack = iac_core::Stack::new("prod");
    let operator = "203.0.113.10/32".parse().unwrap();
    let config = PlatformConfig::on_aws("eu-central-1", operator, "ssh-ed25519 AAAAC3Nz test");
    let platform = KafkaPlatform::register(&mut stack, &config, "rendered").unwrap();
    let deployment = &platform.deployment;
    let registered: std::collections::BTreeSet<String> = deployment
        .steps
        .iter()
        .chain(deployment.onto_node.values())
        .map(|command| command.resource_name().to_owned())
        .collect();
    let named: std::collections::BTreeSet<String> =
        kafka_components::deploy::command_names(&config)
            .into_iter()
            .collect();
    assert_eq!(registered.len(), 4 + 3 + 3, "{registered:?}");
    assert_eq!(named, registered);
}
