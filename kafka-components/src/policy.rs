//! Policy checks: what the platform we replace learnt the hard way, refused at preview with
//! the TOML field to change.
//!
//! - Kafka JVMs (controllers, brokers, Connect) on less than 8 GiB were OOM-killed.
//! - The native JMX port equal to a JMX exporter port broke Connect.
//! - A KRaft quorum needs an odd number of at least three voters, spread over three zones.
//! - Replication must fit the brokers, and `min.insync.replicas` must leave room for one
//!   replica to be down.
//! - SSH and the monitoring ports open to the whole internet is refused unless asked for.
//! - It ran PLAINTEXT after certificate trouble: a SASL_SSL platform needs certificates that
//!   are valid while it runs (a node's no longer than its CA's) and a place for its secrets
//!   outside the repository.

use std::fmt;

use crate::config::{AwsSite, LocalSite, NetworkConfig, PlatformConfig, Site};
use crate::ports::{self, LOCAL_PORT_STEP, Listener};
use crate::programs::{KafkaHome, java_problem, program_path};
use crate::role::Role;

/// Memory (GiB) of the instance types the platform may use. A type not listed is refused:
/// add it here with its memory.
const MEMORY_GIB: &[(&str, f64)] = &[
    ("t3.nano", 0.5),
    ("t3.micro", 1.0),
    ("t3.small", 2.0),
    ("t3.medium", 4.0),
    ("t3.large", 8.0),
    ("t3.xlarge", 16.0),
    ("t3.2xlarge", 32.0),
    ("m5.large", 8.0),
    ("m5.xlarge", 16.0),
    ("m5.2xlarge", 32.0),
    ("m6i.large", 8.0),
    ("m6i.xlarge", 16.0),
    ("m6i.2xlarge", 32.0),
    ("m7i.large", 8.0),
    ("m7i.xlarge", 16.0),
    ("m7i.2xlarge", 32.0),
    ("m7i-flex.large", 8.0),
    ("m7i-flex.xlarge", 16.0),
    ("m7i-flex.2xlarge", 32.0),
    ("r6i.large", 16.0),
    ("r6i.xlarge", 32.0),
    ("r7i.large", 16.0),
    ("r7i.xlarge", 32.0),
    ("c6i.large", 4.0),
    ("c6i.xlarge", 8.0),
    ("c7i.large", 4.0),
    ("c7i.xlarge", 8.0),
];

/// The minimum memory of a node running a Kafka JVM.
pub const KAFKA_MIN_MEMORY_GIB: f64 = 8.0;

/// Memory of an instance type, if it is in the table.
pub fn memory_gib(instance_type: &str) -> Option<f64> {
    MEMORY_GIB
        .iter()
        .find(|(t, _)| *t == instance_type)
        .map(|(_, m)| *m)
}

/// One refused setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The TOML field to change, e.g. `nodes.broker.instance_type`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

/// Every refused setting of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<Violation>);

fn violation(field: impl Into<String>, message: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a configuration against every policy.
pub fn check(config: &PlatformConfig) -> Result<(), PolicyErrors> {
    let mut found = Vec::new();
    match &config.site {
        Site::Aws(aws) => {
            for lesson in [instance_memory, quorum_and_brokers, network, deployment] {
                lesson(aws, &mut found);
            }
            ports_on_a_node(config, &mut found);
        }
        Site::Local(site) => {
            ports_on_this_machine(config, &mut found);
            local_heaps(site, &mut found);
        }
    }
    for lesson in [
        replication,
        custom_properties,
        alert_receivers,
        timings,
        security,
    ] {
        lesson(config, &mut found);
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(PolicyErrors(found))
    }
}

/// [`check`], and this machine for what the configuration needs of it: a place for secrets
/// outside the working directory (the repository, where the environment files live), and a
/// local platform's programs. The platforms run it before they register anything.
pub fn check_on_this_machine(config: &PlatformConfig) -> Result<(), PolicyErrors> {
    let mut found = check(config).err().map(|e| e.0).unwrap_or_default();
    secrets_outside_the_working_directory(config, &mut found);
    if let Site::Local(site) = &config.site {
        found.extend(missing_programs(site));
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(PolicyErrors(found))
    }
}

/// Secrets never land in the tree the environment files (and the repository) live in.
fn secrets_outside_the_working_directory(config: &PlatformConfig, found: &mut Vec<Violation>) {
    if let Some(credentials) = config.security.credentials_dir.as_deref()
        && let (Ok(credentials), Ok(here)) =
            (std::path::absolute(credentials), std::env::current_dir())
        && credentials.starts_with(&here)
    {
        found.push(violation(
            "security.credentials_dir",
            format!(
                "{} is inside the working directory {}: keys and passwords go outside the repository",
                credentials.display(),
                here.display()
            ),
        ));
    }
}

/// Every program of `[local.programs]` that is not there, with where to get it; the Kafka
/// folder without its jars, agent or logging configuration; Java older than 17.
fn missing_programs(site: &LocalSite) -> Vec<Violation> {
    let p = &site.programs;
    let build =
        "`cargo build -p services --bins` builds it (local.build runs that before every plan)";
    let mut missing: Vec<Violation> = [
        (
            "java",
            &p.java,
            "install Java 17 or later (Debian: openjdk-17-jre-headless)",
        ),
        (
            "prometheus",
            &p.prometheus,
            "install the Debian package prometheus",
        ),
        (
            "alertmanager",
            &p.alertmanager,
            "install the Debian package prometheus-alertmanager",
        ),
        (
            "node_exporter",
            &p.node_exporter,
            "install the Debian package prometheus-node-exporter",
        ),
        ("admin_api", &p.admin_api, build),
        ("connector", &p.connector, build),
    ]
    .into_iter()
    .filter(|(_, program, _)| iac_local::locate(&program_path(program)).is_none())
    .map(|(field, program, remedy)| {
        violation(
            format!("local.programs.{field}"),
            format!("`{program}` is not there: {remedy}, or name where it is"),
        )
    })
    .collect();
    let kafka = KafkaHome(program_path(&p.kafka));
    if let Some(what) = kafka.missing() {
        missing.push(violation(
            "local.programs.kafka",
            format!(
                "`{}` {what}: `KAFKA_PLATFORM_KAFKA=1 scripts/setup.sh` fetches Kafka with Maven into ~/.cache/kafka-platform/kafka, or name where it is",
                p.kafka
            ),
        ));
    }
    let java = program_path(&p.java);
    if iac_local::locate(&java).is_some()
        && let Some(problem) = java_problem(&java)
    {
        missing.push(violation("local.programs.java", problem));
    }
    missing
}

/// The images cp-ansible 8.3 deploys onto: it supports the Debian, Ubuntu and RedHat families
/// and asserts Python 3.10 or later on every node, which of those only these ship (Amazon
/// Linux 2023, RHEL 8 and 9, Debian 11 and Ubuntu 20.04 have older ones).
const DEPLOYABLE_IMAGES: [(&str, &str); 4] = [
    ("debian-12-", "Debian 12"),
    ("debian-13-", "Debian 13"),
    ("ubuntu-jammy-22.04-", "Ubuntu 22.04"),
    ("ubuntu-noble-24.04-", "Ubuntu 24.04"),
];

/// A deployment needs machines to deploy onto, an operating system cp-ansible supports, and
/// nodes that run the services built on this machine.
fn deployment(config: &AwsSite, found: &mut Vec<Violation>) {
    if !config.deploy.enabled {
        return;
    }
    if config.aws.endpoint_url.is_some() {
        found.push(violation(
            "deploy.enabled",
            "the instances of an emulator (aws.endpoint_url) are not machines to deploy onto: set `enabled = false` under [deploy]",
        ));
    }
    if !DEPLOYABLE_IMAGES
        .iter()
        .any(|(name, _)| config.ami.name.contains(name))
    {
        let known: Vec<&str> = DEPLOYABLE_IMAGES.iter().map(|(_, os)| *os).collect();
        found.push(violation(
            "ami.name",
            format!(
                "`{}` is not an image cp-ansible deploys onto (it needs Python 3.10 or later on every node): choose {} (e.g. `debian-12-amd64-*`), or set `enabled = false` under [deploy]",
                config.ami.name,
                known.join(", ")
            ),
        ));
    }
    let here = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    if config
        .ami
        .architecture
        .as_deref()
        .is_some_and(|a| a != here)
    {
        found.push(violation(
            "ami.architecture",
            format!(
                "the services are built on this machine ({here}) and copied to the nodes, which must be {here} too"
            ),
        ));
    }
}

/// Kafka nodes need 8 GiB (2 GiB nodes were OOM-killed running Kafka and the JMX exporter).
fn instance_memory(config: &AwsSite, found: &mut Vec<Violation>) {
    let nodes = &config.nodes;
    for role in Role::ALL.into_iter().filter(|&role| nodes.count(role) > 0) {
        let group = nodes.group(role);
        let field = format!("nodes.{}.instance_type", role.name());
        let memory = group
            .memory_gib
            .map(f64::from)
            .or_else(|| memory_gib(&group.instance_type));
        match memory {
            None => found.push(violation(
                field,
                format!(
                    "`{}` is not in the instance memory table: use a listed type (e.g. m7i-flex.large) or give its memory as nodes.{}.memory_gib",
                    group.instance_type,
                    role.name()
                ),
            )),
            Some(gib) if role != Role::Platform && gib < KAFKA_MIN_MEMORY_GIB => found.push(violation(
                field,
                format!(
                    "{} has {gib} GiB of memory; a {} runs a Kafka JVM and the JMX exporter and needs at least {KAFKA_MIN_MEMORY_GIB} GiB (smaller nodes were OOM-killed): choose e.g. m7i-flex.large",
                    group.instance_type,
                    role.name()
                ),
            )),
            Some(_) => {}
        }
    }
}

/// An odd KRaft quorum of at least 3, at least one broker, and one platform node (SSH reaches
/// the others through it).
fn quorum_and_brokers(config: &AwsSite, found: &mut Vec<Violation>) {
    let nodes = &config.nodes;
    let controllers = nodes.count(Role::Controller);
    if controllers < 3 || controllers.is_multiple_of(2) {
        found.push(violation(
            "nodes.controller.count",
            format!("{controllers} controllers cannot form a fault-tolerant KRaft quorum: use an odd number, at least 3"),
        ));
    }
    let brokers = nodes.count(Role::Broker);
    if brokers == 0 {
        found.push(violation(
            "nodes.broker.count",
            "the platform needs at least one broker",
        ));
    }
    let platform = nodes.count(Role::Platform);
    if platform != 1 {
        found.push(violation(
            "nodes.platform.count",
            format!("{platform} platform nodes: use 1 (it runs the monitoring and the admin API, and SSH reaches the other nodes through it)"),
        ));
    }
}

/// No two services on one port of a node (SSH's included); the native JMX port is not an
/// exporter's; no two ports opened by one security group alike (a rule for one would open
/// the other on every node of the group).
fn ports_on_a_node(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let clashes = Role::ALL
        .into_iter()
        .flat_map(|role| port_clashes(&config.ports.on_host(role)));
    report_clashes(clashes, "both listen on the same node", found);
    for group in &ports::SECURITY_GROUPS {
        let opened: Vec<(&'static Listener, u32)> = group
            .opens()
            .map(|l| (l, u32::from(l.port(&config.ports))))
            .collect();
        // Listeners of one node are the check above's.
        let clashes = port_clashes(&opened)
            .into_iter()
            .filter(|(a, b, _)| !a.roles.iter().any(|role| b.roles.contains(role)));
        report_clashes(
            clashes,
            &format!(
                "{} share a security group, whose rule for one would open the other on every one of them",
                group.holds
            ),
            found,
        );
    }
}

/// No two local services on one port: they all share 127.0.0.1, the second and third of a
/// role on its ports + 100 and + 200, which must stay ports.
fn ports_on_this_machine(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let ports = config.ports.on_this_machine(|role| config.count(role));
    let past: std::collections::BTreeSet<&'static str> = ports
        .iter()
        .filter(|(_, port)| *port > u32::from(u16::MAX))
        .map(|(listener, _)| listener.field)
        .collect();
    for field in &past {
        found.push(violation(
            *field,
            format!(
                "the third node of its role listens on it + {}, past 65535: pick a lower port",
                2 * LOCAL_PORT_STEP
            ),
        ));
    }
    let outgoing = ephemeral_ports();
    let mut lent = std::collections::BTreeMap::new();
    for &(listener, port) in ports.iter().filter(|(_, port)| outgoing.contains(port)) {
        lent.entry(listener.field).or_insert(port);
    }
    for (field, port) in lent.into_iter().filter(|(field, _)| !past.contains(field)) {
        found.push(violation(
            field,
            format!(
                "{port} is among the ports this machine lends to outgoing connections ({}-{}, net.ipv4.ip_local_port_range), so any connection may hold it when the service starts: pick a port below {}",
                outgoing.start(),
                outgoing.end(),
                outgoing.start() - 2 * u32::from(LOCAL_PORT_STEP)
            ),
        ));
    }
    report_clashes(port_clashes(&ports), "both listen on this machine", found);
}

/// The ports this machine gives the local end of outgoing connections: Linux's
/// `net.ipv4.ip_local_port_range`, or its default where that cannot be read.
pub fn ephemeral_ports() -> std::ops::RangeInclusive<u32> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u32>);
            Some(bounds.next()?.ok()?..=bounds.next()?.ok()?)
        })
        .unwrap_or(32_768..=60_999)
}

/// The smallest heap (MiB) a local Kafka JVM of each role starts and keeps running with.
const MIN_LOCAL_HEAP_MIB: [(Role, u32); 3] = [
    (Role::Controller, 192),
    (Role::Broker, 256),
    (Role::Connect, 256),
];

/// Each local Kafka JVM gets a heap it can run in.
fn local_heaps(site: &LocalSite, found: &mut Vec<Violation>) {
    for (role, least) in MIN_LOCAL_HEAP_MIB {
        let heap = site.heap.of(role).unwrap_or(least);
        if heap < least {
            found.push(violation(
                format!("local.heap.{}_mib", role.name()),
                format!(
                    "{heap} MiB is too small for a {} (it runs out of memory starting): give it at least {least}",
                    role.name()
                ),
            ));
        }
    }
}

/// Pairs of listeners on the same port (a listener paired with itself: port 0), the second
/// the one to change.
fn port_clashes(ports: &[(&'static Listener, u32)]) -> Vec<Clash> {
    let mut clashes = Vec::new();
    for (i, &(first, port)) in ports.iter().enumerate() {
        if port == 0 {
            clashes.push((first, first, port));
        }
        for &(second, other) in &ports[i + 1..] {
            if port == other {
                // The one to change is a setting: never SSH's fixed port.
                let (first, second) = if second.is_setting() {
                    (first, second)
                } else {
                    (second, first)
                };
                clashes.push((first, second, port));
            }
        }
    }
    clashes
}

/// Two listeners on one port.
type Clash = (&'static Listener, &'static Listener, u32);

fn report_clashes(
    clashes: impl IntoIterator<Item = Clash>,
    shared: &str,
    found: &mut Vec<Violation>,
) {
    // Roles share ports (node_exporter's): one clash is reported once.
    let clashes: std::collections::BTreeSet<_> = clashes
        .into_iter()
        .map(|(first, second, port)| (first.field, second.field, port))
        .collect();
    for (first, second, port) in clashes {
        found.push(if first == second {
            violation(first, "port 0 is not a port a service can listen on: pick 1-65535")
        } else if first == ports::JMX.field || second == ports::JMX.field {
            let exporter = if first == ports::JMX.field { second } else { first };
            violation(
                ports::JMX.field,
                format!("the native JMX port {port} is also `{exporter}`: the JVM and the exporter cannot share a port; pick another"),
            )
        } else {
            violation(
                second,
                format!("{port} is also `{first}`, and {shared}: pick another"),
            )
        });
    }
}

/// What the platform sets in every Kafka node's properties, and where that is decided: a
/// custom property may not override it.
const PLATFORM_PROPERTIES: [(&str, &str); 12] = [
    ("node.id", "from the node's place in its role"),
    ("process.roles", "from the node's role"),
    (
        "controller.quorum.voters",
        "from the controllers and `ports.controller`",
    ),
    ("controller.listener.names", "for the controllers' listener"),
    ("listeners", "from `[ports]`"),
    (
        "advertised.listeners",
        "from `[ports]` and the node's address",
    ),
    (
        "inter.broker.listener.name",
        "for the brokers' own listener",
    ),
    ("listener.security.protocol.map", "from `[security]`"),
    ("log.dirs", "to the node's storage"),
    ("broker.rack", "from the node's zone"),
    (
        "default.replication.factor",
        "from `kafka.replication_factor`",
    ),
    ("min.insync.replicas", "from `kafka.min_insync_replicas`"),
];

/// Custom broker and controller properties: named like properties, on one line, and none
/// the platform sets itself.
fn custom_properties(config: &PlatformConfig, found: &mut Vec<Violation>) {
    for (table, properties) in [
        (
            "kafka_broker_custom_properties",
            &config.kafka.broker_properties,
        ),
        (
            "kafka_controller_custom_properties",
            &config.kafka.controller_properties,
        ),
    ] {
        for (key, value) in properties {
            let field = format!("{table}.\"{key}\"");
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                found.push(violation(
                    field,
                    "is not a property name (letters, digits, `.`, `_` and `-`)",
                ));
            } else if let Some((_, set)) = PLATFORM_PROPERTIES.iter().find(|(name, _)| name == key)
            {
                found.push(violation(
                    field,
                    format!("the platform sets it {set}: remove it here"),
                ));
            } else if value.contains('\n') {
                found.push(violation(field, "a property's value is one line"));
            }
        }
    }
}

/// Replicas fit on the brokers, and `min.insync.replicas` leaves room for one replica down.
fn replication(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let brokers = config.count(Role::Broker);
    let kafka = &config.kafka;
    if kafka.replication_factor == 0 {
        found.push(violation(
            "kafka.replication_factor",
            "0 replicas keep no data: use at least 1 (3 in production)",
        ));
        return;
    }
    if kafka.min_insync_replicas == 0 {
        found.push(violation(
            "kafka.min_insync_replicas",
            "0 acknowledges writes no replica has: use at least 1",
        ));
    }
    if kafka.replication_factor > brokers {
        found.push(violation(
            "kafka.replication_factor",
            format!(
                "{} replicas cannot be placed on {brokers} broker(s): lower it or add brokers",
                kafka.replication_factor
            ),
        ));
    }
    if kafka.min_insync_replicas >= kafka.replication_factor {
        found.push(violation(
            "kafka.min_insync_replicas",
            format!(
                "{} with replication factor {} stops writes as soon as one replica is down: use at most {}",
                kafka.min_insync_replicas,
                kafka.replication_factor,
                kafka.replication_factor.saturating_sub(1)
            ),
        ));
    }
}

/// Three distinct zones, a VPC with a /24 per zone and in it an address for every node, an
/// operator CIDR that is not the internet, and no empty region, endpoint or login user.
fn network(config: &AwsSite, found: &mut Vec<Violation>) {
    zone_names(&config.network, found);
    aws_settings(config, found);
    zone_count(&config.network, found);
    addresses(config, found);
}

/// Each availability zone named, once.
fn zone_names(network: &NetworkConfig, found: &mut Vec<Violation>) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, zone) in network.availability_zones.iter().enumerate() {
        if zone.trim().is_empty() {
            found.push(violation(
                format!("network.availability_zones[{i}]"),
                "is empty: name a zone, e.g. eu-central-1a",
            ));
        } else if !seen.insert(zone.as_str()) {
            found.push(violation(
                format!("network.availability_zones[{i}]"),
                format!("`{zone}` is listed twice: each zone gets one subnet"),
            ));
        }
    }
}

/// The region, the endpoint and the SSH user, when given, are not empty.
fn aws_settings(config: &AwsSite, found: &mut Vec<Violation>) {
    if config.aws.region.trim().is_empty() {
        found.push(violation(
            "aws.region",
            "is empty: name a region, e.g. eu-central-1",
        ));
    }
    if config
        .aws
        .endpoint_url
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        found.push(violation(
            "aws.endpoint_url",
            "is empty: remove it to use AWS, or give the emulator's URL",
        ));
    }
    if config
        .ssh
        .user
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        found.push(violation(
            "ssh.user",
            "is empty: remove it (the image's default `admin`) or name the login user",
        ));
    }
}

/// Three zones, unless a sandbox says fewer will do.
fn zone_count(network: &NetworkConfig, found: &mut Vec<Violation>) {
    let zones = network.availability_zones.len();
    if zones == 0 {
        found.push(violation(
            "network.availability_zones",
            "list at least one availability zone",
        ));
    } else if zones < 3 && !network.allow_fewer_than_three_zones {
        found.push(violation(
            "network.availability_zones",
            format!("{zones} zone(s): controllers and brokers must spread over 3 zones to survive losing one; list 3 (or set allow_fewer_than_three_zones for a sandbox)"),
        ));
    }
}

/// Room in the VPC for a /24 per zone and in each /24 for the role's nodes; the operator's
/// block not the whole internet.
fn addresses(config: &AwsSite, found: &mut Vec<Violation>) {
    let network = &config.network;
    let zones = network.availability_zones.len();
    if network.zone_subnets().is_none() {
        found.push(violation(
            "network.vpc_cidr",
            format!(
                "{} has no room for a /24 per zone ({zones} zones): use a larger block, e.g. /16",
                network.vpc_cidr
            ),
        ));
    }
    if network.operator_cidr.prefix_len() == 0 && !network.allow_open_operator_cidr {
        found.push(violation(
            "network.operator_cidr",
            "0.0.0.0/0 opens SSH and the monitoring ports to the whole internet: use your address (e.g. 203.0.113.7/32), or set allow_open_operator_cidr",
        ));
    }
    let zones = u32::try_from(zones).unwrap_or(u32::MAX).max(1);
    for role in Role::ALL {
        let count = config.nodes.count(role);
        if count.div_ceil(zones) > role.hosts_per_zone() {
            found.push(violation(
                format!("nodes.{}.count", role.name()),
                format!(
                    "{count} {}s over {zones} zone(s) is more than the {} addresses each zone's /24 keeps for the role: use at most {}, or list more zones",
                    role.name(),
                    role.hosts_per_zone(),
                    role.hosts_per_zone() * zones
                ),
            ));
        }
    }
}

/// Intervals that can work: a stalled-source alert slower than two polls (else a healthy
/// connector between polls raises it), and nothing polled or scraped more than once a second.
fn timings(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let second = std::time::Duration::from_secs(1);
    let poll = config.connector.poll_interval;
    for (field, value) in [
        (
            "monitoring.scrape_interval",
            config.monitoring.scrape_interval,
        ),
        ("connector.poll_interval", poll),
    ] {
        if value < second {
            found.push(violation(field, "is under a second: use at least \"1s\""));
        }
    }
    let stalled = config.monitoring.source_stalled_after;
    if stalled < 2 * poll {
        found.push(violation(
            "monitoring.source_stalled_after",
            format!(
                "{} is less than two polls of the connector (connector.poll_interval = {}): a healthy connector would raise ConnectorSourceStalled between polls; use at least {}",
                humantime::format_duration(stalled),
                humantime::format_duration(poll),
                humantime::format_duration(2 * poll)
            ),
        ));
    }
}

/// Alert receivers: http(s) webhooks with unique names other than `default`.
fn alert_receivers(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let mut names = std::collections::BTreeSet::new();
    for (i, receiver) in config.alerting.receivers.iter().enumerate() {
        if !(receiver.webhook_url.starts_with("http://")
            || receiver.webhook_url.starts_with("https://"))
        {
            found.push(violation(
                format!("alerting.receivers[{i}].webhook_url"),
                format!("`{}` is not an http(s) URL", receiver.webhook_url),
            ));
        }
        let valid = !receiver.name.is_empty()
            && receiver.name != "default"
            && names.insert(receiver.name.as_str());
        if !valid {
            found.push(violation(
                format!("alerting.receivers[{i}].name"),
                format!(
                    "`{}`: receiver names must be non-empty, unique and not `default`",
                    receiver.name
                ),
            ));
        }
    }
}

/// A SASL_SSL platform: certificates valid for a sensible time (a node's within its CA's),
/// secrets written to an absolute path.
fn security(config: &PlatformConfig, found: &mut Vec<Violation>) {
    let security = &config.security;
    if !security.is_sasl_ssl() {
        return;
    }
    if security.certificate_validity_days == 0 {
        found.push(violation(
            "security.certificate_validity_days",
            "a certificate valid for 0 days has expired when it is issued: give at least 1",
        ));
    }
    if security.certificate_validity_days > security.ca_validity_days {
        found.push(violation(
            "security.certificate_validity_days",
            format!(
                "{} days is longer than the CA's {} (security.ca_validity_days): a node's certificate would outlive the CA that signed it",
                security.certificate_validity_days, security.ca_validity_days
            ),
        ));
    }
    match security.credentials_dir.as_deref() {
        None => found.push(violation(
            "security.credentials_dir",
            "a SASL_SSL platform writes its keys and passwords there: set an absolute path outside the repository",
        )),
        Some(dir) if !dir.starts_with('/') => found.push(violation(
            "security.credentials_dir",
            format!("`{dir}` is not an absolute path: give one outside the repository"),
        )),
        Some(_) => {}
    }
}
