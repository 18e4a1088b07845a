//! Monitoring files: Prometheus (scrape config and alert rules), Alertmanager, and Grafana
//! (datasource, dashboard provider, dashboards). Targets and dashboard node lists come from
//! the graph; queries select nodes by the `node` label, never by address.

use askama::Template;

use super::paths;
use super::{NodeFacts, RenderError, RenderedFile, file, of_role};
use crate::config::{PlatformConfig, Receiver, Site};
use crate::ports::{self, Listener, Ports};
use crate::role::Role;

/// The datasource every dashboard panel names.
const DATASOURCE_UID: &str = "kafka-platform-prometheus";

struct Target {
    address: String,
    node: String,
    role: &'static str,
    zone: String,
}

struct Job {
    name: &'static str,
    targets: Vec<Target>,
}

#[derive(Template)]
#[template(path = "prometheus/prometheus.yml", escape = "none")]
struct Prometheus<'a> {
    env: &'a str,
    ports: &'a Ports,
    scrape_interval: String,
    jobs: Vec<Job>,
}

#[derive(Template)]
#[template(path = "prometheus/rules/kafka-platform.yml", escape = "none")]
struct AlertRules<'a> {
    env: &'a str,
    stalled_seconds: u64,
    stalled_for: String,
    pending: Pending,
}

/// The alerts' `for:` durations: each its production time, or `monitoring.alerts_pending_at_most`
/// where that is shorter.
struct Pending {
    one_minute: String,
    two_minutes: String,
    five_minutes: String,
    ten_minutes: String,
    fifteen_minutes: String,
}

impl Pending {
    fn new(at_most: Option<std::time::Duration>) -> Self {
        let minutes = |m: u64| {
            let production = std::time::Duration::from_secs(60 * m);
            prometheus_duration(at_most.map_or(production, |cap| cap.min(production)))
        };
        Self {
            one_minute: minutes(1),
            two_minutes: minutes(2),
            five_minutes: minutes(5),
            ten_minutes: minutes(10),
            fifteen_minutes: minutes(15),
        }
    }
}

#[derive(Template)]
#[template(path = "alertmanager/alertmanager.yml", escape = "none")]
struct Alertmanager<'a> {
    env: &'a str,
    group_wait: String,
    group_interval: String,
    default_receiver: &'a str,
    receivers: &'a [Receiver],
}

#[derive(Template)]
#[template(
    path = "grafana/provisioning/datasources/prometheus.yml",
    escape = "none"
)]
struct Datasource<'a> {
    env: &'a str,
    ports: &'a Ports,
    datasource_uid: &'a str,
}

#[derive(Template)]
#[template(
    path = "grafana/provisioning/dashboards/kafka-platform.yml",
    escape = "none"
)]
struct DashboardProvider<'a> {
    env: &'a str,
    dashboards: &'static str,
}

/// Where the platform node's Grafana reads the rendered dashboards from (the platform
/// playbook copies them there).
pub(super) const GRAFANA_DASHBOARDS: &str = "/var/lib/grafana/dashboards/kafka-platform";

struct Query {
    ref_id: String,
    expr: &'static str,
    legend: &'static str,
}

struct Panel {
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    x: u32,
    y: u32,
    targets: Vec<Query>,
}

#[derive(Template)]
#[template(path = "grafana/dashboards/dashboard.json", escape = "none")]
struct Dashboard<'a> {
    env: &'a str,
    uid: String,
    title: String,
    description: String,
    role: &'static str,
    datasource_uid: &'a str,
    nodes: Vec<&'a str>,
    node_query: String,
    all_nodes: String,
    panels: Vec<Panel>,
}

/// A panel: title, description, unit and its queries (`expr`, legend).
type PanelSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BROKER_PANELS: &[PanelSpec] = &[
    (
        "Partitions",
        "Partitions and leaders per broker",
        "short",
        &[
            (
                "kafka_server_replicamanager_partitioncount{node=~\"$node\"}",
                "{{node}} partitions",
            ),
            (
                "kafka_server_replicamanager_leadercount{node=~\"$node\"}",
                "{{node}} leaders",
            ),
        ],
    ),
    (
        "Under-replicated partitions",
        "Partitions led by the broker whose followers lag",
        "short",
        &[(
            "kafka_server_replicamanager_underreplicatedpartitions{node=~\"$node\"}",
            "{{node}}",
        )],
    ),
    (
        "Bytes in",
        "Bytes produced to the broker",
        "Bps",
        &[(
            "sum by (node) (rate(kafka_server_brokertopicmetrics_bytesin_total{node=~\"$node\"}[5m]))",
            "{{node}}",
        )],
    ),
    (
        "Bytes out",
        "Bytes fetched from the broker",
        "Bps",
        &[(
            "sum by (node) (rate(kafka_server_brokertopicmetrics_bytesout_total{node=~\"$node\"}[5m]))",
            "{{node}}",
        )],
    ),
    (
        "Request rate",
        "Requests per second by API",
        "reqps",
        &[(
            "sum by (node, request) (rate(kafka_network_requestmetrics_requests_total{node=~\"$node\"}[5m]))",
            "{{node}} {{request}}",
        )],
    ),
    (
        "ISR shrinks and expands",
        "Replicas leaving and rejoining the in-sync set",
        "ops",
        &[
            (
                "rate(kafka_server_replicamanager_isrshrinks_total{node=~\"$node\"}[5m])",
                "{{node}} shrinks",
            ),
            (
                "rate(kafka_server_replicamanager_isrexpands_total{node=~\"$node\"}[5m])",
                "{{node}} expands",
            ),
        ],
    ),
];

const CONTROLLER_PANELS: &[PanelSpec] = &[
    (
        "Active controller",
        "1 on the quorum leader, 0 elsewhere; the sum must be 1",
        "short",
        &[(
            "kafka_controller_kafkacontroller_activecontrollercount{node=~\"$node\"}",
            "{{node}}",
        )],
    ),
    (
        "Leader elections",
        "Raft epoch changes (quorum leader elections) and unclean partition leader elections",
        "short",
        &[
            (
                "changes(kafka_server_raft_metrics_current_epoch{node=~\"$node\"}[5m])",
                "{{node}} quorum elections",
            ),
            (
                "increase(kafka_controller_controllerstats_uncleanleaderelections_total{node=~\"$node\"}[5m])",
                "{{node}} unclean elections",
            ),
        ],
    ),
    (
        "Raft commit latency",
        "Time to commit a metadata record",
        "ms",
        &[
            (
                "kafka_server_raft_metrics_commit_latency_avg{node=~\"$node\"}",
                "{{node}} avg",
            ),
            (
                "kafka_server_raft_metrics_commit_latency_max{node=~\"$node\"}",
                "{{node}} max",
            ),
        ],
    ),
    (
        "Brokers",
        "Registered brokers, active and fenced",
        "short",
        &[
            (
                "kafka_controller_kafkacontroller_activebrokercount{node=~\"$node\"}",
                "{{node}} active",
            ),
            (
                "kafka_controller_kafkacontroller_fencedbrokercount{node=~\"$node\"}",
                "{{node}} fenced",
            ),
        ],
    ),
    (
        "Partitions",
        "Partitions in the cluster, and those without a leader",
        "short",
        &[
            (
                "kafka_controller_kafkacontroller_globalpartitioncount{node=~\"$node\"}",
                "{{node}} total",
            ),
            (
                "kafka_controller_kafkacontroller_offlinepartitionscount{node=~\"$node\"}",
                "{{node}} offline",
            ),
        ],
    ),
];

const CONNECT_PANELS: &[PanelSpec] = &[
    (
        "Connector status",
        "Each connector's state (1 = in that state)",
        "short",
        &[
            (
                "kafka_connect_connector_status{node=~\"$node\"} == 1",
                "{{connector}} {{status}}",
            ),
            (
                "http_source_connector_status{node=~\"$node\"} == 1",
                "{{connector}} {{status}}",
            ),
        ],
    ),
    (
        "Task status",
        "Each task's state (1 = in that state)",
        "short",
        &[(
            "kafka_connect_connector_task_status{node=~\"$node\"} == 1",
            "{{connector}}/{{task}} {{status}}",
        )],
    ),
    (
        "Connectors and tasks",
        "Connectors and tasks per worker",
        "short",
        &[
            (
                "kafka_connect_worker_connector_count{node=~\"$node\"}",
                "{{node}} connectors",
            ),
            (
                "kafka_connect_worker_task_count{node=~\"$node\"}",
                "{{node}} tasks",
            ),
        ],
    ),
    (
        "Throughput",
        "Records written to Kafka by source connectors, read by sink connectors",
        "rps",
        &[
            (
                "sum by (connector) (rate(kafka_connect_source_task_source_record_write_total{node=~\"$node\"}[5m]))",
                "{{connector}} written",
            ),
            (
                "sum by (connector) (rate(kafka_connect_sink_task_sink_record_read_total{node=~\"$node\"}[5m]))",
                "{{connector}} read",
            ),
            (
                "sum by (connector) (rate(http_source_records_produced_total{node=~\"$node\"}[5m]))",
                "{{connector}} produced",
            ),
        ],
    ),
];

/// A duration as Prometheus and Alertmanager write it (`5m`, `90s`).
fn prometheus_duration(d: std::time::Duration) -> String {
    let seconds = d.as_secs();
    if seconds > 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The scrape jobs: the JMX exporters of every Kafka JVM, node_exporter (on every node on
/// AWS; once for the one machine locally) and the services.
fn jobs(env: &str, config: &PlatformConfig, nodes: &[NodeFacts]) -> Vec<Job> {
    let p = &config.ports;
    let job = |name, listener: &Listener| job(name, nodes, listener.roles, listener.port(p));
    let mut jobs = vec![
        job("kafka-controller", &ports::JMX_EXPORTER_CONTROLLER),
        job("kafka-broker", &ports::JMX_EXPORTER_BROKER),
        job("kafka-connect", &ports::JMX_EXPORTER_CONNECT),
    ];
    jobs.push(match &config.site {
        Site::Aws(_) => job("node", &ports::NODE_EXPORTER),
        Site::Local(_) => Job {
            name: "node",
            targets: vec![Target {
                address: format!("127.0.0.1:{}", p.node_exporter),
                node: format!("{env}-host"),
                role: "host",
                zone: "local".to_owned(),
            }],
        },
    });
    jobs.extend([
        job("kafka-admin-api", &ports::ADMIN_API),
        job("http-source-connector", &ports::HTTP_SOURCE_CONNECTOR),
    ]);
    jobs.retain(|j| !j.targets.is_empty());
    jobs
}

fn job(name: &'static str, nodes: &[NodeFacts], roles: &[Role], port: u16) -> Job {
    Job {
        name,
        targets: of_role(nodes, roles)
            .into_iter()
            .map(|n| Target {
                address: format!("{}:{}", n.private_ip, n.port(port)),
                node: n.name.clone(),
                role: n.role.name(),
                zone: n.zone.clone(),
            })
            .collect(),
    }
}

fn dashboard<'a>(
    env: &'a str,
    role: Role,
    title: &str,
    nodes: &'a [NodeFacts],
    specs: &[PanelSpec],
) -> Dashboard<'a> {
    let names: Vec<&str> = of_role(nodes, &[role])
        .into_iter()
        .map(|n| n.name.as_str())
        .collect();
    let panels = specs
        .iter()
        .zip(0u32..)
        .map(|(&(title, description, unit, queries), i)| Panel {
            title,
            description,
            unit,
            x: (i % 2) * 12,
            y: (i / 2) * 8,
            targets: queries
                .iter()
                .zip('A'..)
                .map(|(&(expr, legend), ref_id)| Query {
                    ref_id: ref_id.to_string(),
                    expr,
                    legend,
                })
                .collect(),
        })
        .collect();
    Dashboard {
        env,
        uid: format!("{env}-kafka-{}", role.name()),
        title: format!("{title} ({env})"),
        description: format!(
            "{title} of stack `{env}`, rendered by `stacks render {env}`; the node list comes from the applied graph."
        ),
        role: role.name(),
        datasource_uid: DATASOURCE_UID,
        node_query: names.join(","),
        all_nodes: names.join("|"),
        nodes: names,
        panels,
    }
}

/// Prometheus, its rules, Alertmanager and Grafana.
pub(super) fn files(
    env: &str,
    config: &PlatformConfig,
    nodes: &[NodeFacts],
) -> Result<Vec<RenderedFile>, RenderError> {
    let p = &config.ports;
    let prometheus = Prometheus {
        env,
        ports: p,
        scrape_interval: prometheus_duration(config.monitoring.scrape_interval),
        jobs: jobs(env, config, nodes),
    };
    let stalled = config.monitoring.source_stalled_after;
    let rules = AlertRules {
        env,
        stalled_seconds: stalled.as_secs(),
        stalled_for: prometheus_duration(stalled / 2),
        pending: Pending::new(config.monitoring.alerts_pending_at_most),
    };
    let receivers = &config.alerting.receivers;
    let alertmanager = Alertmanager {
        env,
        group_wait: prometheus_duration(config.alerting.group_wait),
        group_interval: prometheus_duration(config.alerting.group_interval),
        default_receiver: receivers.first().map_or("default", |r| r.name.as_str()),
        receivers,
    };
    let datasource = Datasource {
        env,
        ports: p,
        datasource_uid: DATASOURCE_UID,
    };
    Ok(vec![
        file(paths::PROMETHEUS_CONFIG, prometheus.render())?,
        file(paths::ALERT_RULES, rules.render())?,
        file(paths::ALERTMANAGER_CONFIG, alertmanager.render())?,
        file(paths::GRAFANA_DATASOURCE, datasource.render())?,
        file(
            paths::GRAFANA_DASHBOARD_PROVIDER,
            DashboardProvider {
                env,
                dashboards: GRAFANA_DASHBOARDS,
            }
            .render(),
        )?,
        file(
            paths::BROKER_DASHBOARD,
            dashboard(env, Role::Broker, "Kafka brokers", nodes, BROKER_PANELS).render(),
        )?,
        file(
            paths::CONTROLLER_DASHBOARD,
            dashboard(
                env,
                Role::Controller,
                "KRaft controllers",
                nodes,
                CONTROLLER_PANELS,
            )
            .render(),
        )?,
        file(
            paths::CONNECT_DASHBOARD,
            dashboard(env, Role::Connect, "Kafka Connect", nodes, CONNECT_PANELS).render(),
        )?,
    ])
}
