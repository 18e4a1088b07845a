//! The `LocalPlatform` component: the platform as processes on 127.0.0.1 of this machine,
//! from the same configuration, policies and rendered files as on AWS.
//!
//! Apache Kafka as the seed runs it: 3 KRaft controllers and 3 brokers, one of each in each
//! of three local zones (`broker.rack`), each JVM with the JMX exporter agent and the rule
//! files rendered for AWS; a Kafka Connect distributed worker with its agent; the admin API,
//! the HTTP source connector polling the admin API's `/topics` into a topic, node_exporter,
//! Alertmanager and Prometheus. Every one is a `local:Service`; each Kafka node's storage is
//! formatted by a `local:Command` before it starts (never reformatted: a folder formatted for
//! another cluster is refused). The n-th node of a role listens on each of its ports plus
//! 100 × (n − 1) ([`crate::ports::LOCAL_PORT_STEP`]). A digest of the rendered files each
//! service reads is one of its triggers, so a changed line restarts exactly the services
//! that read it.
//!
//! With `security.protocol = "sasl_ssl"` Kafka is reached only over TLS with SCRAM-SHA-512, as
//! on AWS: the stack generates the CA, a certificate for every Kafka node (`localhost`,
//! 127.0.0.1) and the SCRAM passwords into `security.credentials_dir`; the SCRAM users are
//! made when the storage is formatted; brokers and controllers prove themselves to the
//! controllers by certificate.

use iac_core::{Output, ResourceOptions, RollingGroup, Stack};
use iac_local::{Command, Environment, Folder, Service, ServiceArgs};

use crate::config::{LocalSite, PlatformConfig};
use crate::gate::KafkaGate;
use crate::nodes::{NODES_OUTPUT, NodeFacts};
use crate::policy::{self, PolicyErrors, Violation};
use crate::ports::{self, LOCAL_PORT_STEP, Listener};
use crate::programs::{program_fingerprint, program_path};
use crate::render::{RenderedConfig, paths};
use crate::role::Role;
use crate::security::{
    self, ADMIN_API_PASSWORD_FILE, CA_FILE, CONNECTOR, CertificateSubject, Credentials,
};
use crate::triggers::{CREDENTIALS_DIGEST, digest};

mod kafka;

/// The three local zones the Kafka nodes are spread over, as AWS spreads them over three
/// availability zones.
pub(crate) const LOCAL_ZONES: [&str; 3] = ["local-a", "local-b", "local-c"];

/// The admin API's service, which the Kafka roll's gate reads through.
const ADMIN_API: &str = "admin-api";

/// The local platform's nodes, all on 127.0.0.1: the seed's topology (3 controllers,
/// 3 brokers, a Connect worker, a platform node), the n-th of a role in the n-th local zone
/// and on its ports plus 100 × (n − 1).
pub fn local_nodes(env: &str) -> Vec<NodeFacts> {
    Role::ALL
        .into_iter()
        .flat_map(|role| {
            (1..=role.default_count()).map(move |index| NodeFacts {
                name: format!("{env}-{}-{index}", role.name()),
                role,
                index,
                zone: LOCAL_ZONES[(index as usize - 1) % LOCAL_ZONES.len()].to_owned(),
                id: "local".to_owned(),
                private_ip: "127.0.0.1".to_owned(),
                public_ip: String::new(),
                private_dns: "127.0.0.1".to_owned(),
                port_shift: LOCAL_PORT_STEP * u16::try_from(index - 1).unwrap_or(0),
            })
        })
        .collect()
}

/// A service of the local platform: its resource and the URL to open.
#[derive(Debug, Clone)]
pub struct LocalService {
    /// The resource name (`prometheus`, `broker-2`).
    pub name: String,
    /// The process.
    pub service: Service,
    /// What a person opens (`http://127.0.0.1:9090/targets`), or for a broker the address
    /// clients bootstrap from.
    pub url: String,
}

/// The registered local platform.
#[derive(Debug, Clone)]
pub struct LocalPlatform {
    /// The rendered configuration.
    pub config: Folder,
    /// Every service, in start order.
    pub services: Vec<LocalService>,
    /// The generated CA, certificates and passwords of a SASL_SSL platform.
    pub credentials: Option<Credentials>,
}

/// How a service is probed for readiness: a GET of `http://127.0.0.1:<port><path>` answers
/// 200 and, when given, its body matches the regular expression.
struct Ready(u16, &'static str, Option<&'static str>);

/// A service's port as the environment file sets it: a taken port names its field.
type PortField = &'static Listener;

/// What one service needs beyond its name.
struct Spec {
    name: String,
    /// The program (its fingerprint restarts the service when it is rebuilt).
    program: String,
    args: Vec<String>,
    /// Environment added (may be secret).
    environment: Output<Environment>,
    /// Files of the credentials folder it reads (a change restarts it).
    reads_credentials: Vec<String>,
    ready: Ready,
    /// How long it may take to become ready, in seconds.
    ready_timeout_secs: i64,
    /// The port it is probed on, whose field a taken port names.
    port: PortField,
    /// The other ports it listens on, with their fields: each must be free before a start.
    listens: Vec<(u16, PortField)>,
    /// Rendered files it reads (a change restarts it).
    reads: Vec<String>,
    /// What a person opens, or for a broker what it is.
    url: String,
    /// Services it starts after (by name prefix: `broker` is every broker).
    after: &'static [&'static str],
    /// Its working directory (made when missing), else the CLI's.
    workdir: Option<String>,
    /// The storage command that must have run before it starts.
    storage: Option<Command>,
}

impl Spec {
    fn new(name: impl Into<String>, program: String, port: PortField, ready: Ready) -> Self {
        Self {
            name: name.into(),
            program,
            args: Vec::new(),
            environment: Output::known(Environment::new()),
            reads_credentials: Vec::new(),
            ready,
            ready_timeout_secs: 60,
            port,
            listens: Vec::new(),
            reads: Vec::new(),
            url: String::new(),
            after: &[],
            workdir: None,
            storage: None,
        }
    }
}

impl LocalPlatform {
    /// Checks the policies, then registers the rendered configuration in the folder
    /// `rendered` and every service of the platform on `stack`. `env_file` names the
    /// environment file in errors (a taken port names its field there).
    pub fn register(
        stack: &mut Stack,
        config: &PlatformConfig,
        rendered: &str,
        env_file: &str,
    ) -> Result<Self, PolicyErrors> {
        let crate::config::Site::Local(site) = &config.site else {
            return Err(PolicyErrors(vec![Violation {
                field: "local".to_owned(),
                message: "this environment runs on AWS: register it with KafkaPlatform".to_owned(),
            }]));
        };
        policy::check_on_this_machine(config)?;
        let env = stack.name().to_owned();
        let nodes = local_nodes(&env);
        let rendered_config =
            crate::render::register(stack, config, Output::known(nodes.clone()), rendered);
        stack.export(NODES_OUTPUT, Output::known(nodes.clone()));
        let dir = site
            .dir
            .clone()
            .unwrap_or_else(|| format!(".iac/local/{env}"));
        // Absolute: the state means the same folder whatever the working directory.
        let dir = std::path::absolute(&dir).map_or(dir, |d| d.to_string_lossy().into_owned());
        let subjects = nodes
            .iter()
            .filter(|n| security::has_certificate(n.role))
            .map(|n| CertificateSubject {
                name: short_name(n),
                files: n.name.clone(),
                dns_name: Output::known("localhost".to_owned()),
                ip: n.private_ip.clone(),
                keystore: true,
            })
            .collect();
        let credentials = security::register(stack, config, subjects);
        let context = Context {
            env: &env,
            config,
            site,
            rendered,
            dir: &dir,
            credentials: credentials.as_ref(),
        };
        let mut services: Vec<LocalService> = Vec::new();
        for spec in specs(stack, &context, &nodes) {
            let service =
                register_service(stack, &context, spec, &services, &rendered_config, env_file);
            services.push(service);
        }
        stack.rolling_group(kafka_roll(&services, &nodes, &config.ports));
        Ok(Self {
            config: rendered_config.folder,
            services,
            credentials,
        })
    }
}

/// A service's resource: restarted when its program, a rendered file or a credential it
/// reads changes; started after its storage and the services it comes after.
fn register_service(
    stack: &mut Stack,
    context: &Context<'_>,
    mut spec: Spec,
    earlier: &[LocalService],
    rendered: &RenderedConfig,
    env_file: &str,
) -> LocalService {
    let mut triggers = Output::known(vec![program_fingerprint(&spec.program)]);
    let mut options = ResourceOptions::new();
    if !spec.reads.is_empty() {
        let reads = std::mem::take(&mut spec.reads);
        triggers = triggers
            .zip(rendered.files.clone())
            .try_map(move |(mut triggers, files)| {
                triggers.push(digest(&files, &reads)?);
                Ok(triggers)
            });
        options = options.depends_on(&rendered.folder);
    }
    let mut environment = spec.environment;
    if let Some(credentials) = context.credentials
        && !spec.reads_credentials.is_empty()
    {
        let files = std::mem::take(&mut spec.reads_credentials);
        environment = environment.zip(credentials.contents.clone()).try_map(
            move |(mut environment, contents)| {
                environment.insert(CREDENTIALS_DIGEST.to_owned(), digest(&contents, &files)?);
                Ok(environment)
            },
        );
        options = options.depends_on(&credentials.folder);
    }
    if let Some(storage) = &spec.storage {
        options = options.depends_on(storage);
    }
    for before in earlier.iter().filter(|s| {
        spec.after.iter().any(|after| {
            s.name
                .strip_prefix(after)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
    }) {
        options = options.depends_on(&before.service);
    }
    let Ready(port, path, body) = spec.ready;
    let args = ServiceArgs {
        program: spec.program.clone().into(),
        args: Output::known(spec.args),
        environment,
        log_file: format!("{}/logs/{}.log", context.dir, spec.name).into(),
        ready_http: Some(format!("http://127.0.0.1:{port}{path}")).into(),
        ready_body: body.map(str::to_owned).into(),
        ready_timeout_secs: Some(spec.ready_timeout_secs).into(),
        stop_grace_secs: 20.into(),
        triggers,
        port_setting: Some(format!("{} in {env_file}", spec.port.field)).into(),
        listens: Output::known(
            spec.listens
                .iter()
                .map(|(port, listener)| {
                    let setting = format!("{} in {env_file}", listener.field);
                    (format!("127.0.0.1:{port}"), setting)
                })
                .collect(),
        ),
        dir: spec.workdir.clone().into(),
        ..Default::default()
    };
    let service = stack.resource_with::<Service>(&spec.name, args, options);
    LocalService {
        name: spec.name,
        service,
        url: spec.url,
    }
}

/// The Kafka nodes roll one at a time, controllers first, each behind the cluster's health
/// as the admin API reads it ([`KafkaGate`]).
fn kafka_roll(
    services: &[LocalService],
    nodes: &[NodeFacts],
    ports: &crate::ports::Ports,
) -> RollingGroup {
    let member = |node: &NodeFacts| {
        let name = short_name(node);
        services.iter().find(|s| s.name == name)
    };
    let controllers = crate::render::of_role(nodes, &[Role::Controller]);
    let brokers = crate::render::of_role(nodes, &[Role::Broker]);
    let ids = |of: &[&NodeFacts], id: fn(&NodeFacts) -> i32| -> Vec<(String, i32)> {
        of.iter()
            .filter_map(|node| Some((member(node)?.service.resource_name().to_owned(), id(node))))
            .collect()
    };
    let gate = KafkaGate::new(ids(&brokers, |n| i32::try_from(n.index).unwrap_or(-1)))
        .with_controllers(controllers.iter().filter_map(|node| {
            let name = member(node)?.service.resource_name().to_owned();
            let id = i32::try_from(crate::render::controller_id(node.index)).unwrap_or(-1);
            let metrics = format!(
                "http://127.0.0.1:{}/metrics",
                node.port(ports.jmx_exporter_controller)
            );
            Some((name, id, metrics))
        }));
    let mut group = RollingGroup::new("kafka", gate).input(serde_json::json!({
        "admin_api": format!("http://127.0.0.1:{}", ports.admin_api),
    }));
    for node in controllers.iter().chain(&brokers).filter_map(|n| member(n)) {
        group = group.member(&node.service);
    }
    match services.iter().find(|s| s.name == ADMIN_API) {
        Some(admin_api) => group.reads(&admin_api.service),
        None => group,
    }
}

/// A node's name in the component, without the environment: `broker-2`.
fn short_name(node: &NodeFacts) -> String {
    format!("{}-{}", node.role.name(), node.index)
}

/// What every spec is made from.
struct Context<'a> {
    env: &'a str,
    config: &'a PlatformConfig,
    site: &'a LocalSite,
    rendered: &'a str,
    dir: &'a str,
    credentials: Option<&'a Credentials>,
}

/// Every service of the local platform, in start order.
fn specs(stack: &mut Stack, context: &Context<'_>, nodes: &[NodeFacts]) -> Vec<Spec> {
    let mut specs: Vec<Spec> = crate::render::of_role(nodes, &[Role::Controller, Role::Broker])
        .into_iter()
        .map(|node| kafka::kafka_node(stack, context, node))
        .collect();
    specs.extend([
        connect_spec(context, nodes),
        admin_api_spec(context, nodes),
        connector_spec(context, nodes),
    ]);
    specs.extend(monitoring_specs(context));
    specs
}

/// The Kafka Connect distributed worker.
fn connect_spec(context: &Context<'_>, nodes: &[NodeFacts]) -> Spec {
    let p = &context.config.ports;
    let connect_port = |port| crate::render::connect_port(nodes, port);
    let mut connect = Spec::new(
        "connect-1",
        program_path(&context.site.programs.java),
        &ports::CONNECT_REST,
        Ready(connect_port(p.connect_rest), "/connectors", None),
    );
    connect.args = kafka::jvm(
        context,
        context.site.heap.connect_mib,
        Some((connect_port(p.jmx_exporter_connect), paths::JMX_CONNECT)),
    );
    connect.args.extend([
        "org.apache.kafka.connect.cli.ConnectDistributed".to_owned(),
        format!("{}/{}", context.rendered, paths::CONNECT_WORKER),
    ]);
    connect.ready_timeout_secs = 180;
    connect.reads = vec![
        paths::CONNECT_WORKER.to_owned(),
        paths::JMX_CONNECT.to_owned(),
    ];
    connect.url = format!(
        "http://127.0.0.1:{}/connectors",
        connect_port(p.connect_rest)
    );
    connect.after = &["broker"];
    connect.workdir = Some(format!("{}/connect-1", context.dir));
    if context.credentials.is_some() {
        connect.reads_credentials = vec![
            security::CONNECT_SECRETS_FILE.to_owned(),
            CA_FILE.to_owned(),
            security::node_files_with_keystore(&format!("{}-connect-1", context.env)).2,
        ];
    }
    connect
}

/// The admin API, on the brokers' client listeners.
fn admin_api_spec(context: &Context<'_>, nodes: &[NodeFacts]) -> Spec {
    let p = &context.config.ports;
    let bootstrap = crate::render::of_role(nodes, &[Role::Broker])
        .into_iter()
        .map(|n| n.endpoint(p.broker_client))
        .collect::<Vec<_>>()
        .join(",");
    let mut admin_api = Spec::new(
        ADMIN_API,
        program_path(&context.site.programs.admin_api),
        &ports::ADMIN_API,
        Ready(p.admin_api, "/ready", None),
    );
    admin_api.args = vec![
        "--bootstrap-servers".into(),
        bootstrap,
        "--listen".into(),
        format!("127.0.0.1:{}", p.admin_api),
    ];
    admin_api.url = format!("http://127.0.0.1:{}/topics", p.admin_api);
    // Not started after the brokers: the Kafka roll's gate reads through it, so a rebuilt
    // admin API comes back before a roll begins. Ready once a broker answers.
    admin_api.ready_timeout_secs = 180;
    if let Some(credentials) = context.credentials {
        admin_api.args.extend(security::admin_api_sasl_args(
            &credentials.path(ADMIN_API_PASSWORD_FILE),
            &credentials.path(CA_FILE),
        ));
        admin_api.reads_credentials = vec![ADMIN_API_PASSWORD_FILE.into(), CA_FILE.into()];
    }
    admin_api
}

/// The HTTP source connector, polling the admin API.
fn connector_spec(context: &Context<'_>, nodes: &[NodeFacts]) -> Spec {
    let p = &context.config.ports;
    let port = crate::render::connect_port(nodes, p.http_source_connector);
    let mut connector = Spec::new(
        "http-source-connector",
        program_path(&context.site.programs.connector),
        &ports::HTTP_SOURCE_CONNECTOR,
        Ready(port, "/metrics", None),
    );
    connector.args = vec![format!("{}/{}", context.rendered, paths::CONNECTOR)];
    connector.reads = vec![paths::CONNECTOR.to_owned()];
    connector.url = format!(
        "http://127.0.0.1:{port}/connectors/{}-admin-api-topics/status",
        context.env
    );
    connector.after = &["broker", ADMIN_API];
    if let Some(credentials) = context.credentials {
        // The rendered connector file names the variable and the CA's path.
        if let Some(password) = credentials.password(CONNECTOR) {
            connector.environment = password.clone().map(|password| {
                Environment::from([(security::CONNECTOR_PASSWORD_VARIABLE.to_owned(), password)])
            });
        }
        connector.reads_credentials = vec![CA_FILE.into()];
    }
    connector
}

/// node_exporter, Alertmanager and Prometheus.
fn monitoring_specs(context: &Context<'_>) -> [Spec; 3] {
    let p = &context.config.ports;
    let programs = &context.site.programs;
    let rendered = context.rendered;
    let mut node_exporter = Spec::new(
        "node-exporter",
        program_path(&programs.node_exporter),
        &ports::NODE_EXPORTER,
        Ready(p.node_exporter, "/metrics", None),
    );
    node_exporter.args = vec![format!(
        "--web.listen-address=127.0.0.1:{}",
        p.node_exporter
    )];
    node_exporter.url = format!("http://127.0.0.1:{}/metrics", p.node_exporter);

    let mut alertmanager = Spec::new(
        "alertmanager",
        program_path(&programs.alertmanager),
        &ports::ALERTMANAGER,
        Ready(p.alertmanager, "/-/ready", None),
    );
    alertmanager.args = vec![
        format!("--config.file={rendered}/{}", paths::ALERTMANAGER_CONFIG),
        format!("--storage.path={}/alertmanager", context.dir),
        format!("--web.listen-address=127.0.0.1:{}", p.alertmanager),
        // One instance: no cluster port (it would listen on every interface).
        "--cluster.listen-address=".into(),
    ];
    alertmanager.reads = vec![paths::ALERTMANAGER.to_owned()];
    alertmanager.url = format!("http://127.0.0.1:{}/", p.alertmanager);

    let mut prometheus = Spec::new(
        "prometheus",
        program_path(&programs.prometheus),
        &ports::PROMETHEUS,
        Ready(p.prometheus, "/-/ready", None),
    );
    prometheus.args = vec![
        format!("--config.file={rendered}/{}", paths::PROMETHEUS_CONFIG),
        format!("--storage.tsdb.path={}/prometheus", context.dir),
        format!("--web.listen-address=127.0.0.1:{}", p.prometheus),
    ];
    prometheus.reads = vec![paths::PROMETHEUS.to_owned()];
    prometheus.url = format!("http://127.0.0.1:{}/targets", p.prometheus);
    prometheus.after = &[
        "alertmanager",
        "node-exporter",
        ADMIN_API,
        "http-source-connector",
        "connect",
    ];
    [node_exporter, alertmanager, prometheus]
}
