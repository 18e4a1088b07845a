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
//! 100 × (n − 1) ([`crate::config::LOCAL_PORT_STEP`]). A digest of the rendered files each
//! service reads is one of its triggers, so a changed line restarts exactly the services
//! that read it.
//!
//! With `security.protocol = "sasl_ssl"` Kafka is reached only over TLS with SCRAM-SHA-512, as
//! on AWS: the stack generates the CA, a certificate for every Kafka node (`localhost`,
//! 127.0.0.1) and the SCRAM passwords into `security.credentials_dir`; the SCRAM users are
//! made when the storage is formatted; brokers and controllers prove themselves to the
//! controllers by certificate.

use std::collections::BTreeMap;

use iac_core::{Output, ResourceOptions, SKETCH_MARK, Stack};
use iac_local::{Command, CommandArgs, Environment, Folder, Service, ServiceArgs};
use sha2::{Digest, Sha256};

use crate::config::{LOCAL_PORT_STEP, LocalSite, PlatformConfig, Role};
use crate::nodes::{NODES_OUTPUT, NodeFacts};
use crate::policy::{self, PolicyErrors, Violation};
use crate::render::server_properties_path;
use crate::security::{
    self, ADMIN_API_PASSWORD_FILE, CA_FILE, CONNECTOR, CertificateSubject, Credentials,
};

/// The three local zones the Kafka nodes are spread over, as AWS spreads them over three
/// availability zones.
pub(crate) const LOCAL_ZONES: [&str; 3] = ["local-a", "local-b", "local-c"];

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
    /// The field of the environment file that sets its port.
    port_field: &'static str,
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
    fn new(name: impl Into<String>, program: String, ready: Ready) -> Self {
        Self {
            name: name.into(),
            program,
            args: Vec::new(),
            environment: Output::known(Environment::new()),
            reads_credentials: Vec::new(),
            ready,
            ready_timeout_secs: 60,
            port_field: "",
            reads: Vec::new(),
            url: String::new(),
            after: &[],
            workdir: None,
            storage: None,
        }
    }
}

/// `${NAME}` and `${NAME:-default}` replaced by the variable (or the default when it is
/// unset or empty); anything else is left as written.
fn expand_variables(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + end];
        let (name, default) = inner.split_once(":-").unwrap_or((inner, ""));
        match std::env::var(name) {
            Ok(value) if !value.is_empty() => out.push_str(&value),
            _ => out.push_str(default),
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A program or a file as the environment file names it: variables expanded, `~/…` in the
/// home folder, a path made absolute with its links resolved (the state means the same file
/// from any working directory, and whichever way a variable led to it: `scripts/setup.sh`
/// exports Kafka's versioned folder, the default names the link to it), a bare name left to
/// `PATH`.
pub(crate) fn program_path(program: &str) -> String {
    let program = expand_variables(program);
    let path = match (program.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => program.clone(),
    };
    if !path.contains('/') {
        return path;
    }
    std::fs::canonicalize(&path)
        .or_else(|_| std::path::absolute(&path))
        .map_or(path, |p| p.to_string_lossy().into_owned())
}

/// The variable holding the digest of the credentials a step or a service reads: a change
/// re-runs or restarts it. A digest of secrets is a secret too: it stays in the environment,
/// encrypted in state, and the triggers stay readable in a preview.
pub(crate) const CREDENTIALS_DIGEST: &str = "KAFKA_PLATFORM_CREDENTIALS_DIGEST";

/// A digest of the files of `files` under the paths `reads` (prefixes); the engine's mark
/// where one of them is a preview's sketch (a digest would hide what is not known yet).
pub(crate) fn digest(files: &BTreeMap<String, String>, reads: &[&str]) -> String {
    let read = || {
        files
            .iter()
            .filter(|(path, _)| reads.iter().any(|r| path.starts_with(r)))
    };
    if read().any(|(_, contents)| contents.contains(SKETCH_MARK)) {
        return SKETCH_MARK.to_owned();
    }
    let mut hash = Sha256::new();
    for (path, contents) in read() {
        hash.update(path.as_bytes());
        hash.update([0]);
        hash.update(contents.as_bytes());
        hash.update([0]);
    }
    format!("sha256:{:x}", hash.finalize())
}

/// The Kafka cluster id of environment `env`: a stable function of its name (a UUID's 16
/// bytes in URL-safe base64, as Kafka writes them), so every node of the environment is
/// formatted for the same cluster, and again after a destroy.
pub(crate) fn cluster_id(env: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let hash = Sha256::digest(format!("kafka-platform local cluster {env}").as_bytes());
    let mut bits = 0u32;
    let mut held = 0;
    let mut id = String::new();
    for byte in &hash[..16] {
        bits = (bits << 8) | u32::from(*byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            id.push(char::from(ALPHABET[((bits >> held) & 63) as usize]));
        }
    }
    // 128 bits: 21 whole characters and 2 bits left, padded as base64 pads them.
    id.push(char::from(ALPHABET[((bits << (6 - held)) & 63) as usize]));
    id
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
        let mut refused = policy::check(config).err().map(|e| e.0).unwrap_or_default();
        refused.extend(missing_programs(site));
        if !refused.is_empty() {
            return Err(PolicyErrors(refused));
        }
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
        for mut spec in specs(stack, &context, &nodes) {
            let mut triggers = Output::known(vec![program_fingerprint(&spec.program)]);
            let mut options = ResourceOptions::new();
            if !spec.reads.is_empty() {
                let reads = std::mem::take(&mut spec.reads);
                let files = rendered_config.files.clone();
                triggers = triggers.zip(files).map(move |(mut t, files)| {
                    let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
                    t.push(digest(&files, &reads));
                    t
                });
                options = options.depends_on(&rendered_config.folder);
            }
            let mut environment = spec.environment;
            if let Some(credentials) = &credentials
                && !spec.reads_credentials.is_empty()
            {
                let files = std::mem::take(&mut spec.reads_credentials);
                environment = environment.zip(credentials.contents.clone()).map(
                    move |(mut environment, contents)| {
                        let read: Vec<&str> = files.iter().map(String::as_str).collect();
                        environment.insert(CREDENTIALS_DIGEST.to_owned(), digest(&contents, &read));
                        environment
                    },
                );
                options = options.depends_on(&credentials.folder);
            }
            if let Some(storage) = &spec.storage {
                options = options.depends_on(storage);
            }
            for earlier in services.iter().filter(|s| {
                spec.after.iter().any(|after| {
                    s.name
                        .strip_prefix(after)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
                })
            }) {
                options = options.depends_on(&earlier.service);
            }
            let Ready(port, path, body) = spec.ready;
            let args = ServiceArgs {
                program: spec.program.clone().into(),
                args: Output::known(spec.args),
                environment,
                log_file: format!("{dir}/logs/{}.log", spec.name).into(),
                ready_http: Some(format!("http://127.0.0.1:{port}{path}")).into(),
                ready_body: body.map(str::to_owned).into(),
                ready_timeout_secs: Some(spec.ready_timeout_secs).into(),
                stop_grace_secs: 20.into(),
                triggers,
                port_setting: Some(format!("{} in {env_file}", spec.port_field)).into(),
                dir: spec.workdir.clone().into(),
                ..Default::default()
            };
            let service = stack.resource_with::<Service>(&spec.name, args, options);
            services.push(LocalService {
                name: spec.name,
                service,
                url: spec.url,
            });
        }
        Ok(Self {
            config: rendered_config.folder,
            services,
            credentials,
        })
    }
}

/// A node's name in the component, without the environment: `broker-2`.
fn short_name(node: &NodeFacts) -> String {
    format!("{}-{}", node.role.name(), node.index)
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
    .map(|(field, program, remedy)| Violation {
        field: format!("local.programs.{field}"),
        message: format!("`{program}` is not there: {remedy}, or name where it is"),
    })
    .collect();
    let kafka = KafkaHome(program_path(&p.kafka));
    if let Some(what) = kafka.missing() {
        missing.push(Violation {
            field: "local.programs.kafka".to_owned(),
            message: format!(
                "`{}` {what}: `KAFKA_PLATFORM_KAFKA=1 scripts/setup.sh` fetches Kafka with Maven into ~/.cache/kafka-platform/kafka, or name where it is",
                p.kafka
            ),
        });
    }
    let java = program_path(&p.java);
    if iac_local::locate(&java).is_some()
        && let Some(problem) = java_problem(&java)
    {
        missing.push(Violation {
            field: "local.programs.java".to_owned(),
            message: problem,
        });
    }
    missing
}

/// Why `java` cannot run Kafka 4.1 (it needs Java 17 or later), if it cannot.
fn java_problem(java: &str) -> Option<String> {
    // `java -XshowSettings:properties -version` prints the specification version: 17, 21 …
    let output = match std::process::Command::new(java)
        .args(["-XshowSettings:properties", "-version"])
        .output()
    {
        Ok(output) => output,
        Err(e) => return Some(format!("`{java}` does not run: {e}")),
    };
    let text = String::from_utf8_lossy(&output.stderr);
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.specification.version = "))
        .map(str::trim);
    match version.and_then(|v| v.parse::<u32>().ok()) {
        Some(major) if major >= 17 => None,
        _ => Some(format!(
            "`{java}` is Java {}: Kafka 4.1 needs Java 17 or later (Debian: openjdk-17-jre-headless)",
            version.unwrap_or("of an unknown version")
        )),
    }
}

/// The Kafka folder scripts/setup.sh makes: the jars, the JMX exporter agent and the
/// logging configuration.
struct KafkaHome(String);

impl KafkaHome {
    fn libs(&self) -> String {
        format!("{}/libs/*", self.0)
    }

    fn agent(&self) -> String {
        format!("{}/agent/jmx_prometheus_javaagent.jar", self.0)
    }

    fn logging(&self) -> String {
        format!("{}/config/log4j2.yaml", self.0)
    }

    /// What is missing, if anything.
    fn missing(&self) -> Option<&'static str> {
        let home = std::path::Path::new(&self.0);
        let has_server_jar = std::fs::read_dir(home.join("libs")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("kafka_2.13-") && name.ends_with(".jar")
            })
        });
        if !home.is_dir() {
            Some("is not a folder")
        } else if !has_server_jar {
            Some("has no Kafka server jar in libs/")
        } else if !std::path::Path::new(&self.agent()).is_file() {
            Some("has no JMX exporter agent (agent/jmx_prometheus_javaagent.jar)")
        } else if !std::path::Path::new(&self.logging()).is_file() {
            Some("has no logging configuration (config/log4j2.yaml)")
        } else {
            None
        }
    }
}

/// The program's size and modification time: a rebuilt binary restarts its service.
pub(crate) fn program_fingerprint(program: &str) -> String {
    let meta = iac_local::locate(program).and_then(|p| std::fs::metadata(p).ok());
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "program {program}: {} bytes, modified {modified}",
        meta.map_or(0, |m| m.len())
    )
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

/// Formats a Kafka node's storage (its working directory's `data/`) for the cluster
/// `KAFKA_CLUSTER_ID`, making the SCRAM users of `KAFKA_SCRAM_USERS` (`<name> <password>`
/// lines), and records a digest of those users beside it (`kafka-platform-users.sha256`,
/// written first: a run stopped while formatting formats again next time, as `data/` has no
/// `meta.properties` until the format is done); `$@` is the JVM's command up to the main
/// class. A folder formatted already for this cluster and these users is left as it is. One formatted for another cluster, or with other passwords
/// (the state that generated them is gone: the users in it would refuse every client), is
/// refused, never reformatted (that would delete its data).
const FORMAT_STORAGE: &str = r#"set -eu
meta=data/meta.properties
users=$(printf '%s\n' "${KAFKA_SCRAM_USERS:-}" | sha256sum | cut -d' ' -f1)
if [ -f "$meta" ]; then
  found=$(sed -n 's/^cluster\.id=//p' "$meta")
  if [ "$found" != "$KAFKA_CLUSTER_ID" ]; then
    echo "kafka-platform: $PWD/data holds the data of Kafka cluster $found, not of this environment's cluster $KAFKA_CLUSTER_ID: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  if [ ! -f kafka-platform-users.sha256 ]; then
    echo "kafka-platform: $PWD/data holds Kafka data without kafka-platform-users.sha256, the record of the SCRAM users it was formatted with (an earlier kafka-platform was stopped between formatting and recording it, or the file was deleted), so whether its users would accept this environment's passwords is unknown: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  if [ "$(cat kafka-platform-users.sha256)" != "$users" ]; then
    echo "kafka-platform: $PWD/data was formatted with SCRAM users of other passwords (the state that generated them was destroyed or lost), which would refuse every client: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again" >&2
    exit 1
  fi
  echo "$PWD/data is formatted for cluster $found already"
  exit 0
fi
while read -r user password; do
  [ -n "$user" ] && set -- "$@" --add-scram "SCRAM-SHA-512=[name=$user,password=$password]"
done <<EOF
${KAFKA_SCRAM_USERS:-}
EOF
echo "$users" > kafka-platform-users.sha256
"$@"
"#;

/// Deletes a Kafka node's storage and its users' digest: destroying the environment destroys
/// its credentials, without which the data could no longer be used.
const DELETE_STORAGE: &str = "rm -rf data kafka-platform-users.sha256";

/// A Kafka JVM's command: heap, the JMX exporter agent on `exporter` with `rules`, logging,
/// the class path; the main class and its arguments follow.
fn jvm(context: &Context<'_>, heap_mib: u32, exporter: Option<(u16, &str)>) -> Vec<String> {
    let kafka = KafkaHome(program_path(&context.site.programs.kafka));
    let mut args = vec![
        format!("-Xms{heap_mib}m"),
        format!("-Xmx{heap_mib}m"),
        "-XX:+UseG1GC".to_owned(),
        "-XX:MaxGCPauseMillis=20".to_owned(),
        "-XX:InitiatingHeapOccupancyPercent=35".to_owned(),
        "-XX:+ExplicitGCInvokesConcurrent".to_owned(),
        "-Djava.awt.headless=true".to_owned(),
    ];
    if let Some((port, rules)) = exporter {
        args.push(format!(
            "-javaagent:{}=127.0.0.1:{port}:{}/{rules}",
            kafka.agent(),
            context.rendered
        ));
    }
    args.extend([
        format!("-Dlog4j2.configurationFile={}", kafka.logging()),
        "-Dkafka.logs.dir=logs".to_owned(),
        "-cp".to_owned(),
        kafka.libs(),
    ]);
    args
}

/// The command that formats a Kafka node's storage in `workdir` (once; see
/// [`FORMAT_STORAGE`]) with its SCRAM users, and deletes it with the environment.
fn storage(
    stack: &mut Stack,
    context: &Context<'_>,
    name: &str,
    workdir: &str,
    properties: &str,
) -> Command {
    let mut format = vec![program_path(&context.site.programs.java)];
    format.extend(jvm(context, 128, None));
    format.extend(
        [
            "kafka.tools.StorageTool",
            "format",
            "-t",
            &cluster_id(context.env),
            "-c",
            &format!("{}/{properties}", context.rendered),
        ]
        .map(str::to_owned),
    );
    let mut environment = Output::known(Environment::from([(
        "KAFKA_CLUSTER_ID".to_owned(),
        cluster_id(context.env),
    )]));
    if let Some(credentials) = context.credentials {
        let users = Output::all(credentials.scram.iter().map(|(user, password)| {
            let principal = user.principal;
            password.clone().map(move |p| format!("{principal} {p}"))
        }));
        environment = environment.zip(users).map(|(mut environment, lines)| {
            environment.insert("KAFKA_SCRAM_USERS".to_owned(), lines.join("\n"));
            environment
        });
    }
    let script = std::iter::once(FORMAT_STORAGE.to_owned())
        .chain(std::iter::once("format".to_owned()))
        .chain(format)
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>();
    let mut options = ResourceOptions::new();
    if let Some(credentials) = context.credentials {
        options = options.depends_on(&credentials.folder);
    }
    stack.resource_with::<Command>(
        &format!("{name}-storage"),
        CommandArgs {
            // In the node's working directory, which the first run makes.
            create: format!(
                "mkdir -p {dir} && cd {dir} && sh -c {}",
                script.join(" "),
                dir = shell_quote(workdir)
            )
            .into(),
            delete: Some(format!("cd {} && {DELETE_STORAGE}", shell_quote(workdir))).into(),
            environment,
            triggers: vec![cluster_id(context.env)].into(),
            ..Default::default()
        },
        options,
    )
}

/// A KRaft node's storage command and service.
fn kafka_node(stack: &mut Stack, context: &Context<'_>, node: &NodeFacts) -> Spec {
    let p = &context.config.ports;
    let name = short_name(node);
    let workdir = format!("{}/{name}", context.dir);
    let properties = server_properties_path(&node.name);
    let heap = context.site.heap.of(node.role).unwrap_or(256);
    let (rules, exporter_port, exporter_field) = match node.role {
        Role::Controller => (
            "jmx/kafka_controller.yml",
            node.port(p.jmx_exporter_controller),
            "ports.jmx_exporter_controller",
        ),
        _ => (
            "jmx/kafka_broker.yml",
            node.port(p.jmx_exporter_broker),
            "ports.jmx_exporter_broker",
        ),
    };
    let storage = storage(stack, context, &name, &workdir, &properties);
    let mut spec = Spec::new(
        name,
        program_path(&context.site.programs.java),
        match node.role {
            // Ready once the quorum has a leader; a broker once it is registered, caught up
            // and unfenced (its state RUNNING).
            Role::Controller => Ready(
                exporter_port,
                "/metrics",
                Some(r"\nkafka_server_raft_metrics_current_leader [0-9]"),
            ),
            _ => Ready(
                exporter_port,
                "/metrics",
                Some(r"\nkafka_server_kafkaserver_brokerstate 3\.0"),
            ),
        },
    );
    spec.args = jvm(context, heap, Some((exporter_port, rules)));
    spec.args.extend([
        "kafka.Kafka".to_owned(),
        format!("{}/{properties}", context.rendered),
    ]);
    spec.ready_timeout_secs = 180;
    spec.port_field = exporter_field;
    spec.reads = vec![properties, rules.to_owned()];
    spec.workdir = Some(workdir);
    spec.storage = Some(storage);
    if context.credentials.is_some() {
        let (_, _, keystore) = security::node_files_with_keystore(&node.name);
        spec.reads_credentials = vec![keystore, CA_FILE.to_owned()];
        if node.role == Role::Broker {
            spec.reads_credentials
                .push(security::BROKER_SECRETS_FILE.to_owned());
        }
    }
    match node.role {
        Role::Controller => {
            spec.url = format!(
                "{} (KRaft controller, {})",
                node.endpoint(p.controller),
                node.zone
            );
        }
        _ => {
            spec.url = format!(
                "{} (Kafka bootstrap server, {}{})",
                node.endpoint(p.broker_client),
                node.zone,
                context
                    .credentials
                    .map(|c| format!(": SASL_SSL, SCRAM-SHA-512, the CA {}", c.path(CA_FILE)))
                    .unwrap_or_default()
            );
            spec.after = &["controller"];
        }
    }
    spec
}

/// `word` quoted for `sh`.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Every service of the local platform, in start order.
fn specs(stack: &mut Stack, context: &Context<'_>, nodes: &[NodeFacts]) -> Vec<Spec> {
    let env = context.env;
    let config = context.config;
    let p = &config.ports;
    let programs = &context.site.programs;
    let rendered = context.rendered;
    let mut specs: Vec<Spec> = crate::render::of_role(nodes, &[Role::Controller, Role::Broker])
        .into_iter()
        .map(|node| kafka_node(stack, context, node))
        .collect();
    let bootstrap = crate::render::of_role(nodes, &[Role::Broker])
        .into_iter()
        .map(|n| n.endpoint(p.broker_client))
        .collect::<Vec<_>>()
        .join(",");

    let connect_port = |port| crate::render::connect_port(nodes, port);
    let mut connect = Spec::new(
        "connect-1",
        program_path(&programs.java),
        Ready(connect_port(p.connect_rest), "/connectors", None),
    );
    connect.args = jvm(
        context,
        context.site.heap.connect_mib,
        Some((
            connect_port(p.jmx_exporter_connect),
            "jmx/kafka_connect.yml",
        )),
    );
    connect.args.extend([
        "org.apache.kafka.connect.cli.ConnectDistributed".to_owned(),
        format!("{rendered}/connect/connect-distributed.properties"),
    ]);
    connect.ready_timeout_secs = 180;
    connect.port_field = "ports.connect_rest";
    connect.reads = vec![
        "connect/connect-distributed.properties".to_owned(),
        "jmx/kafka_connect.yml".to_owned(),
    ];
    connect.url = format!(
        "http://127.0.0.1:{}/connectors",
        connect_port(p.connect_rest)
    );
    connect.after = &["broker"];
    connect.workdir = Some(format!("{}/connect-1", context.dir));

    let mut admin_api = Spec::new(
        "admin-api",
        program_path(&programs.admin_api),
        Ready(p.admin_api, "/ready", None),
    );
    admin_api.args = vec![
        "--bootstrap-servers".into(),
        bootstrap,
        "--listen".into(),
        format!("127.0.0.1:{}", p.admin_api),
    ];
    admin_api.port_field = "ports.admin_api";
    admin_api.url = format!("http://127.0.0.1:{}/topics", p.admin_api);
    admin_api.after = &["broker"];

    let mut connector = Spec::new(
        "http-source-connector",
        program_path(&programs.connector),
        Ready(connect_port(p.http_source_connector), "/metrics", None),
    );
    connector.args = vec![format!("{rendered}/connect/http-source-connector.json")];
    connector.port_field = "ports.http_source_connector";
    connector.reads = vec!["connect/http-source-connector.json".to_owned()];
    connector.url = format!(
        "http://127.0.0.1:{}/connectors/{env}-admin-api-topics/status",
        connect_port(p.http_source_connector)
    );
    connector.after = &["broker", "admin-api"];
    if let Some(credentials) = context.credentials {
        connect.reads_credentials = vec![
            security::CONNECT_SECRETS_FILE.to_owned(),
            CA_FILE.to_owned(),
            security::node_files_with_keystore(&format!("{env}-connect-1")).2,
        ];
        admin_api.args.extend(security::admin_api_sasl_args(
            &credentials.path(ADMIN_API_PASSWORD_FILE),
            &credentials.path(CA_FILE),
        ));
        admin_api.reads_credentials = vec![ADMIN_API_PASSWORD_FILE.into(), CA_FILE.into()];
        // The rendered connector file names the variable and the CA's path.
        if let Some(password) = credentials.password(CONNECTOR) {
            connector.environment = password.clone().map(|password| {
                Environment::from([(security::CONNECTOR_PASSWORD_VARIABLE.to_owned(), password)])
            });
        }
        connector.reads_credentials = vec![CA_FILE.into()];
    }

    let mut node_exporter = Spec::new(
        "node-exporter",
        program_path(&programs.node_exporter),
        Ready(p.node_exporter, "/metrics", None),
    );
    node_exporter.args = vec![format!(
        "--web.listen-address=127.0.0.1:{}",
        p.node_exporter
    )];
    node_exporter.port_field = "ports.node_exporter";
    node_exporter.url = format!("http://127.0.0.1:{}/metrics", p.node_exporter);

    let mut alertmanager = Spec::new(
        "alertmanager",
        program_path(&programs.alertmanager),
        Ready(p.alertmanager, "/-/ready", None),
    );
    alertmanager.args = vec![
        format!("--config.file={rendered}/alertmanager/alertmanager.yml"),
        format!("--storage.path={}/alertmanager", context.dir),
        format!("--web.listen-address=127.0.0.1:{}", p.alertmanager),
        // One instance: no cluster port (it would listen on every interface).
        "--cluster.listen-address=".into(),
    ];
    alertmanager.port_field = "ports.alertmanager";
    alertmanager.reads = vec!["alertmanager/".to_owned()];
    alertmanager.url = format!("http://127.0.0.1:{}/", p.alertmanager);

    let mut prometheus = Spec::new(
        "prometheus",
        program_path(&programs.prometheus),
        Ready(p.prometheus, "/-/ready", None),
    );
    prometheus.args = vec![
        format!("--config.file={rendered}/prometheus/prometheus.yml"),
        format!("--storage.tsdb.path={}/prometheus", context.dir),
        format!("--web.listen-address=127.0.0.1:{}", p.prometheus),
    ];
    prometheus.port_field = "ports.prometheus";
    prometheus.reads = vec!["prometheus/".to_owned()];
    prometheus.url = format!("http://127.0.0.1:{}/targets", p.prometheus);
    prometheus.after = &[
        "alertmanager",
        "node-exporter",
        "admin-api",
        "http-source-connector",
        "connect",
    ];

    specs.extend([
        connect,
        admin_api,
        connector,
        node_exporter,
        alertmanager,
        prometheus,
    ]);
    specs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking

    use super::{FORMAT_STORAGE, cluster_id, expand_variables, program_path};

    /// Runs the storage script in `dir` for cluster `id` with `users`, formatting by `command`
    /// (which prints its arguments): its exit status, standard output and error.
    fn format(
        dir: &std::path::Path,
        id: &str,
        users: &str,
        command: &[&str],
    ) -> (bool, String, String) {
        let output = std::process::Command::new("sh")
            .current_dir(dir)
            .args(["-c", FORMAT_STORAGE, "format"])
            .args(command)
            .env("KAFKA_CLUSTER_ID", id)
            .env("KAFKA_SCRAM_USERS", users)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    #[test]
    fn storage_is_formatted_once_with_the_users_and_another_cluster_s_is_never_reformatted() {
        let dir = tempfile::tempdir().unwrap();
        // Empty: formatted, with a SCRAM user per line; a format stopped half way (its users
        // recorded, no `meta.properties` yet) formats again.
        let users = "alice pw1\nbob pw2";
        let (ok, _, _) = format(dir.path(), "mine", users, &["false"]);
        assert!(!ok);
        let (ok, out, _) = format(dir.path(), "mine", users, &["echo", "format"]);
        assert!(ok);
        assert_eq!(
            out.trim(),
            "format --add-scram SCRAM-SHA-512=[name=alice,password=pw1] --add-scram SCRAM-SHA-512=[name=bob,password=pw2]"
        );
        // Formatted for this cluster and these users: left as it is (the formatting command
        // is not run).
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(
            dir.path().join("data/meta.properties"),
            "version=1\ncluster.id=mine\nnode.id=1\n",
        )
        .unwrap();
        let (ok, out, _) = format(dir.path(), "mine", users, &["false"]);
        assert!(ok, "not formatted again");
        assert!(
            out.contains("is formatted for cluster mine already"),
            "{out}"
        );
        let refused = |id: &str, users: &str| {
            let (ok, _, err) = format(dir.path(), id, users, &["false"]);
            assert!(!ok, "refused: {err}");
            err
        };
        // Other passwords (the state that made them is gone): refused, the data kept.
        let err = refused("mine", "alice other\nbob pw2");
        assert!(
            err.contains("was formatted with SCRAM users of other passwords (the state that generated them was destroyed or lost), which would refuse every client"),
            "{err}"
        );
        // Another cluster's data: refused, with what to do, and kept.
        let err = refused("yours", users);
        assert!(
            err.contains("holds the data of Kafka cluster mine, not of this environment's cluster yours: it is not reformatted (that would delete its data). Move the folder away, or delete it to start empty, then apply again"),
            "{err}"
        );
        // Data whose users were never recorded: refused, the data kept.
        std::fs::remove_file(dir.path().join("kafka-platform-users.sha256")).unwrap();
        let err = refused("mine", users);
        assert!(
            err.contains("holds Kafka data without kafka-platform-users.sha256, the record of the SCRAM users it was formatted with"),
            "{err}"
        );
        assert!(dir.path().join("data/meta.properties").exists());
    }

    #[test]
    fn a_program_is_the_same_path_through_a_link_or_a_variable() {
        // scripts/setup.sh exports Kafka's versioned folder; the environment file's default
        // names the link to it: both are one folder, or every switch restarts the cluster.
        let dir = tempfile::tempdir().unwrap();
        let versioned = dir.path().join("kafka-1234");
        std::fs::create_dir(&versioned).unwrap();
        std::os::unix::fs::symlink(&versioned, dir.path().join("kafka")).unwrap();
        let through_link = program_path(&format!("{}/kafka", dir.path().display()));
        assert_eq!(through_link, program_path(&versioned.display().to_string()));
        assert!(through_link.ends_with("/kafka-1234"), "{through_link}");
        // A path that does not exist yet is still made absolute; a bare name is PATH's.
        assert!(program_path("not-yet/there").starts_with('/'));
        assert_eq!(program_path("prometheus"), "prometheus");
    }

    #[test]
    fn variables_and_defaults_are_expanded() {
        // PATH and HOME are set for any test run; the other name is never set.
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            expand_variables("${HOME}/bin/kafka"),
            format!("{home}/bin/kafka")
        );
        assert_eq!(
            expand_variables("${KAFKA_PLATFORM_NEVER_SET_ANYWHERE:-~/.cache/kafka}"),
            "~/.cache/kafka"
        );
        assert_eq!(expand_variables("java"), "java");
        assert_eq!(expand_variables("broken ${OPEN"), "broken ${OPEN");
    }

    #[test]
    fn a_cluster_id_is_a_uuid_as_kafka_writes_it_and_the_same_for_an_environment() {
        let id = cluster_id("local");
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert_eq!(id, cluster_id("local"));
        assert_ne!(id, cluster_id("staging"));
    }
}
