//! Where each file lies in the rendered folder: the renderers write these paths, and the
//! local services and the deployment steps read them (a changed file restarts or re-runs
//! what reads it). A path ending in `/` is a folder: every file under it.

/// Ansible's settings.
pub const ANSIBLE_CONFIG: &str = "ansible/ansible.cfg";
/// The cp-ansible KRaft inventory.
pub const INVENTORY: &str = "ansible/hosts.yml";
/// The playbook every node gets first: host entries and node_exporter.
pub const NODES_PLAYBOOK: &str = "ansible/nodes.yml";
/// The platform node's playbook: Prometheus, Alertmanager, Grafana, the admin API.
pub const PLATFORM_PLAYBOOK: &str = "ansible/platform.yml";
/// The Connect nodes' playbook: the HTTP source connector.
pub const CONNECT_PLAYBOOK: &str = "ansible/connect.yml";
/// The deployment's folder, and its script.
pub const DEPLOY: &str = "deploy/";
/// The script every deployment step runs.
pub const DEPLOY_SCRIPT: &str = "deploy/deploy.sh";
/// Every node's `/etc/hosts` entries.
pub const HOSTS: &str = "hosts/hosts";
/// The JMX exporter rules, one file per Kafka role.
pub const JMX: &str = "jmx/";
/// The brokers' JMX exporter rules.
pub const JMX_BROKER: &str = "jmx/kafka_broker.yml";
/// The controllers' JMX exporter rules.
pub const JMX_CONTROLLER: &str = "jmx/kafka_controller.yml";
/// Connect's JMX exporter rules.
pub const JMX_CONNECT: &str = "jmx/kafka_connect.yml";
/// The Connect worker's properties.
pub const CONNECT_WORKER: &str = "connect/connect-distributed.properties";
/// The HTTP source connector's configuration.
pub const CONNECTOR: &str = "connect/http-source-connector.json";
/// Prometheus: its configuration and its rules.
pub const PROMETHEUS: &str = "prometheus/";
/// Prometheus's configuration.
pub const PROMETHEUS_CONFIG: &str = "prometheus/prometheus.yml";
/// The alert rules.
pub const ALERT_RULES: &str = "prometheus/rules/kafka-platform.yml";
/// Alertmanager's folder.
pub const ALERTMANAGER: &str = "alertmanager/";
/// Alertmanager's configuration.
pub const ALERTMANAGER_CONFIG: &str = "alertmanager/alertmanager.yml";
/// Grafana's provisioning and dashboards.
pub const GRAFANA: &str = "grafana/";
/// Grafana's Prometheus data source.
pub const GRAFANA_DATASOURCE: &str = "grafana/provisioning/datasources/prometheus.yml";
/// Grafana's dashboard provider.
pub const GRAFANA_DASHBOARD_PROVIDER: &str = "grafana/provisioning/dashboards/kafka-platform.yml";
/// The brokers' dashboard.
pub const BROKER_DASHBOARD: &str = "grafana/dashboards/kafka-broker.json";
/// The controllers' dashboard.
pub const CONTROLLER_DASHBOARD: &str = "grafana/dashboards/kafka-controller.json";
/// Connect's dashboard.
pub const CONNECT_DASHBOARD: &str = "grafana/dashboards/kafka-connect.json";
/// The admin API's systemd unit.
pub const ADMIN_API_UNIT: &str = "systemd/kafka-admin-api.service";
/// The HTTP source connector's systemd unit.
pub const CONNECTOR_UNIT: &str = "systemd/http-source-connector.service";

/// A local KRaft node's `server.properties`.
pub fn server_properties(node: &str) -> String {
    format!("kafka/{node}/server.properties")
}
