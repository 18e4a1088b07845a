//! The `LocalPlatform` component: the platform as processes on 127.0.0.1 of this machine,
//! from the same configuration, policies and rendered files as on AWS.
//!
//! The broker (tansu), the admin API, the HTTP source connector polling the admin API's
//! `/topics` into a topic, node_exporter, Alertmanager and Prometheus, each a
//! `local:Service` on the port `[ports]` gives it. Prometheus, Alertmanager and the connector
//! read the rendered configuration (the `config` folder); a digest of the files each reads is
//! one of its triggers, so a changed line restarts exactly the services that read it.
//!
//! With `security.protocol = "sasl_ssl"` the broker is reached only over TLS with SCRAM, as
//! on AWS: the stack generates the CA, the broker's certificate (`localhost`, 127.0.0.1) and
//! the SCRAM passwords into `security.credentials_dir`; tansu listens on
//! `ports.broker_internal` (127.0.0.1, authentication required) and advertises
//! `ports.broker_client`, where `kafka-tls-front` terminates TLS before it (tansu 0.6 cannot).
//! tansu takes SCRAM users only from an unauthenticated client, so each start of its service
//! first runs it without authentication on `ports.controller` (no controller runs here) just
//! long enough to make the users, then starts it with `--authentication`.

use std::collections::BTreeMap;

use iac_core::{Output, ResourceOptions, SKETCH_MARK, Stack};
use iac_local::{Environment, Folder, Service, ServiceArgs};
use sha2::{Digest, Sha256};

use crate::config::{LocalSite, PlatformConfig, Role};
use crate::nodes::{NODES_OUTPUT, NodeFacts};
use crate::policy::{self, PolicyErrors, Violation};
use crate::security::{
    self, ADMIN_API_PASSWORD_FILE, CA_FILE, CONNECTOR, CertificateSubject, Credentials,
};

/// The local platform's nodes: one broker, one Connect worker and one platform node, all
/// on 127.0.0.1 (no KRaft controllers: tansu needs none).
pub fn local_nodes(env: &str) -> Vec<NodeFacts> {
    [Role::Broker, Role::Connect, Role::Platform]
        .into_iter()
        .map(|role| NodeFacts {
            name: format!("{env}-{}", node_name(role)),
            role,
            index: 1,
            zone: "local".to_owned(),
            id: "local".to_owned(),
            private_ip: "127.0.0.1".to_owned(),
            public_ip: String::new(),
            private_dns: "127.0.0.1".to_owned(),
        })
        .collect()
}

/// The name in the component of this machine's one node of `role` (`broker-1`); its
/// [`NodeFacts`] name is `<env>-<that>`.
fn node_name(role: Role) -> String {
    format!("{}-1", role.name())
}

/// A service of the local platform: its resource and the URL to open.
#[derive(Debug, Clone)]
pub struct LocalService {
    /// The resource name (`prometheus`).
    pub name: &'static str,
    /// The process.
    pub service: Service,
    /// What a person opens (`http://127.0.0.1:9090/targets`), or for the broker the
    /// address clients bootstrap from.
    pub url: String,
}

/// The registered local platform.
#[derive(Debug, Clone)]
pub struct LocalPlatform {
    /// The rendered configuration.
    pub config: Folder,
    /// Every service, in start order.
    pub services: Vec<LocalService>,
    /// The generated CA, certificate and passwords of a SASL_SSL platform.
    pub credentials: Option<Credentials>,
}

/// What one service needs beyond its name.
struct Spec {
    name: &'static str,
    /// The program (its fingerprint restarts the service when it is rebuilt).
    program: String,
    args: Vec<String>,
    /// A shell script the program runs under, `/bin/sh -c <script> <name> <program>
    /// <args…>` (its last step `exec`s the program).
    wrapper: Option<&'static str>,
    /// Environment added (may be secret).
    environment: Output<Environment>,
    /// Files of the credentials folder it reads (a change restarts it).
    reads_credentials: Vec<String>,
    /// The `ready_http` path (else ready when its port accepts).
    ready_path: Option<&'static str>,
    port: u16,
    port_field: &'static str,
    /// Rendered files it reads (a change restarts it).
    reads: &'static [&'static str],
    /// What a person opens, or for a broker what it is.
    url: String,
    after: &'static [&'static str],
    /// Its working directory (made when missing), else the CLI's.
    workdir: Option<String>,
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
/// home folder, a relative path made absolute (the state means the same file from any
/// working directory), a bare name left to `PATH`.
pub(crate) fn program_path(program: &str) -> String {
    let program = expand_variables(program);
    let path = match (program.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => program.clone(),
    };
    if !path.contains('/') {
        return path;
    }
    std::path::absolute(&path).map_or(path, |p| p.to_string_lossy().into_owned())
}

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
        refused.extend(missing_programs(site, config.security.is_sasl_ssl()));
        if !refused.is_empty() {
            return Err(PolicyErrors(refused));
        }
        let env = stack.name().to_owned();
        let nodes = local_nodes(&env);
        let rendered_config =
            crate::render::register(stack, config, Output::known(nodes.clone()), rendered);
        stack.export(NODES_OUTPUT, Output::known(nodes));
        let dir = site
            .dir
            .clone()
            .unwrap_or_else(|| format!(".iac/local/{env}"));
        // Absolute: the state means the same folder whatever the working directory.
        let dir = std::path::absolute(&dir).map_or(dir, |d| d.to_string_lossy().into_owned());
        let broker = CertificateSubject {
            name: node_name(Role::Broker),
            files: format!("{env}-{}", node_name(Role::Broker)),
            dns_name: Output::known("localhost".to_owned()),
            ip: "127.0.0.1".to_owned(),
        };
        let credentials = security::register(stack, config, vec![broker]);
        let mut services = Vec::new();
        for spec in specs(&env, config, site, rendered, &dir, credentials.as_ref()) {
            let mut triggers = Output::known(vec![program_fingerprint(&spec.program)]);
            let reads = spec.reads;
            if !reads.is_empty() {
                let files = rendered_config.files.clone();
                triggers = triggers.zip(files).map(move |(mut t, files)| {
                    t.push(digest(&files, reads));
                    t
                });
            }
            let mut options = ResourceOptions::new();
            if !reads.is_empty() {
                options = options.depends_on(&rendered_config.folder);
            }
            if let Some(credentials) = &credentials
                && !spec.reads_credentials.is_empty()
            {
                let files = spec.reads_credentials;
                // A digest of secrets is a secret too: it stays encrypted in state.
                triggers =
                    triggers
                        .zip(credentials.contents.clone())
                        .map(move |(mut t, contents)| {
                            let read: Vec<&str> = files.iter().map(String::as_str).collect();
                            t.push(digest(&contents, &read));
                            t
                        });
                options = options.depends_on(&credentials.folder);
            }
            let address = format!("127.0.0.1:{}", spec.port);
            let (program, args) = match spec.wrapper {
                Some(script) => {
                    let mut args = vec!["-c".to_owned(), script.to_owned(), spec.name.to_owned()];
                    args.push(spec.program.clone());
                    args.extend(spec.args);
                    ("/bin/sh".to_owned(), args)
                }
                None => (spec.program.clone(), spec.args),
            };
            let args = ServiceArgs {
                program: program.into(),
                args: Output::known(args),
                environment: spec.environment,
                log_file: format!("{dir}/logs/{}.log", spec.name).into(),
                ready_tcp: Output::known(spec.ready_path.is_none().then(|| address.clone())),
                ready_http: Output::known(spec.ready_path.map(|p| format!("http://{address}{p}"))),
                ready_timeout_secs: 60.into(),
                stop_grace_secs: 10.into(),
                triggers,
                port_setting: Some(format!("{} in {env_file}", spec.port_field)).into(),
                dir: spec.workdir.clone().into(),
                ..Default::default()
            };
            for earlier in services
                .iter()
                .filter(|s: &&LocalService| spec.after.contains(&s.name))
            {
                options = options.depends_on(&earlier.service);
            }
            let service = stack.resource_with::<Service>(spec.name, args, options);
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

/// Every program of `[local.programs]` that is not there, with where to get it.
fn missing_programs(site: &LocalSite, secured: bool) -> Vec<Violation> {
    let p = &site.programs;
    [
        (
            "tansu",
            &p.tansu,
            "scripts/setup.sh builds it (`cargo install tansu --features dynostore`)",
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
        (
            "admin_api",
            &p.admin_api,
            "`cargo build -p services --bins` builds it (local.build runs that before every plan)",
        ),
        (
            "connector",
            &p.connector,
            "`cargo build -p services --bins` builds it (local.build runs that before every plan)",
        ),
    ]
    .into_iter()
    .chain(secured.then_some((
        "tls_front",
        &p.tls_front,
        "`cargo build -p services --bins` builds it (local.build runs that before every plan)",
    )))
    .filter(|(_, program, _)| iac_local::locate(&program_path(program)).is_none())
    .map(|(field, program, remedy)| Violation {
        field: format!("local.programs.{field}"),
        message: format!("`{program}` is not there: {remedy}, or name where it is"),
    })
    .collect()
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

/// tansu's service with SCRAM: `$1` is tansu, `$2` the start-up listener; the rest are the
/// broker's own arguments. tansu takes a user change only from an unauthenticated client, so
/// a broker without authentication runs on the start-up listener (127.0.0.1) until every
/// user of `TANSU_SCRAM_USERS` (`<name> <password>` lines) is made, and is killed (SQLite
/// loses no committed transaction to a kill); then the broker starts with authentication.
const TANSU_WITH_USERS: &str = r#"set -eu
tansu="$1"; startup="$2"; shift 2
"$tansu" broker --listener-url "$startup" --advertised-listener-url "$startup" --storage-engine sqlite://tansu.db --silent &
broker=$!
tries=0
until printf '%s\n' "$TANSU_SCRAM_USERS" | while read -r user password; do
    "$tansu" user create --broker "$startup" --mechanism scram512 "$user" "$password" > user-create.err 2>&1 || exit 1
  done
do
  tries=$((tries + 1))
  if [ "$tries" -ge 150 ] || ! kill -0 "$broker" 2> /dev/null; then
    kill -KILL "$broker" 2> /dev/null || true
    echo "kafka-platform: the SCRAM users could not be made through $startup:" >&2
    cat user-create.err >&2
    exit 1
  fi
  sleep 0.2
done
kill -KILL "$broker"
wait "$broker" || true
rm -f user-create.err
unset TANSU_SCRAM_USERS
exec "$tansu" "$@" --authentication
"#;

/// Every service of the local platform, in start order.
fn specs(
    env: &str,
    config: &PlatformConfig,
    site: &LocalSite,
    rendered: &str,
    dir: &str,
    credentials: Option<&Credentials>,
) -> Vec<Spec> {
    let p = &config.ports;
    let programs = &site.programs;
    let client = format!("tcp://127.0.0.1:{}", p.broker_client);
    // tansu listening on `listen`, advertising the client address.
    let broker_args = |listen: String| -> Vec<String> {
        vec![
            "broker".into(),
            "--listener-url".into(),
            listen,
            "--advertised-listener-url".into(),
            client.clone(),
            // SQLite in its own folder: topics, offsets and users outlive a restart.
            "--storage-engine".into(),
            "sqlite://tansu.db".into(),
        ]
    };
    let none = || Output::known(Environment::new());
    let mut tansu = Spec {
        name: "tansu",
        program: program_path(&programs.tansu),
        args: broker_args(client.clone()),
        wrapper: None,
        environment: none(),
        reads_credentials: Vec::new(),
        ready_path: None,
        port: p.broker_client,
        port_field: "ports.broker_client",
        reads: &[],
        url: format!("127.0.0.1:{} (Kafka bootstrap servers)", p.broker_client),
        after: &[],
        workdir: Some(format!("{dir}/tansu")),
    };
    let mut admin_api = Spec {
        name: "admin-api",
        program: program_path(&programs.admin_api),
        args: vec![
            "--bootstrap-servers".into(),
            format!("127.0.0.1:{}", p.broker_client),
            "--listen".into(),
            format!("127.0.0.1:{}", p.admin_api),
        ],
        wrapper: None,
        environment: none(),
        reads_credentials: Vec::new(),
        ready_path: Some("/ready"),
        port: p.admin_api,
        port_field: "ports.admin_api",
        reads: &[],
        url: format!("http://127.0.0.1:{}/topics", p.admin_api),
        after: &["tansu", "tls-front"],
        workdir: None,
    };
    let mut connector = Spec {
        name: "http-source-connector",
        program: program_path(&programs.connector),
        args: vec![format!("{rendered}/connect/http-source-connector.json")],
        wrapper: None,
        environment: none(),
        reads_credentials: Vec::new(),
        ready_path: Some("/metrics"),
        port: p.http_source_connector,
        port_field: "ports.http_source_connector",
        reads: &["connect/http-source-connector.json"],
        url: format!(
            "http://127.0.0.1:{}/connectors/{env}-admin-api-topics/status",
            p.http_source_connector
        ),
        after: &["tansu", "tls-front", "admin-api"],
        workdir: None,
    };
    let mut front = None;
    if let Some(credentials) = credentials {
        // tansu behind the TLS front, requiring SCRAM; its users made at each start.
        // The wrapper's arguments: the start-up listener, then the broker's own.
        let startup = format!("tcp://127.0.0.1:{}", p.controller);
        let internal = format!("tcp://127.0.0.1:{}", p.broker_internal);
        tansu.args = [vec![startup], broker_args(internal)].concat();
        tansu.wrapper = Some(TANSU_WITH_USERS);
        let users = Output::all(credentials.scram.iter().map(|(user, password)| {
            let principal = user.principal;
            password.clone().map(move |p| format!("{principal} {p}"))
        }));
        tansu.environment = users
            .map(|lines| Environment::from([("TANSU_SCRAM_USERS".to_owned(), lines.join("\n"))]));
        tansu.port = p.broker_internal;
        tansu.url = format!(
            "127.0.0.1:{} (the broker, requiring SCRAM; clients reach it through tls-front)",
            p.broker_internal
        );
        tansu.port_field = "ports.broker_internal";
        let (crt, key) = security::node_files(&format!("{env}-{}", node_name(Role::Broker)));
        front = Some(Spec {
            name: "tls-front",
            program: program_path(&programs.tls_front),
            args: vec![
                "--listen".into(),
                format!("127.0.0.1:{}", p.broker_client),
                "--upstream".into(),
                format!("127.0.0.1:{}", p.broker_internal),
                "--cert".into(),
                credentials.path(&crt),
                "--key".into(),
                credentials.path(&key),
            ],
            wrapper: None,
            environment: none(),
            reads_credentials: vec![crt, key],
            ready_path: None,
            port: p.broker_client,
            port_field: "ports.broker_client",
            reads: &[],
            url: format!(
                "127.0.0.1:{} (Kafka bootstrap servers: SASL_SSL, SCRAM-SHA-512, the CA {})",
                p.broker_client,
                credentials.path(CA_FILE)
            ),
            after: &["tansu"],
            workdir: None,
        });
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
    let mut specs = vec![tansu];
    specs.extend(front);
    specs.extend([
        admin_api,
        connector,
        Spec {
            name: "node-exporter",
            program: program_path(&programs.node_exporter),
            args: vec![format!(
                "--web.listen-address=127.0.0.1:{}",
                p.node_exporter
            )],
            wrapper: None,
            environment: none(),
            reads_credentials: Vec::new(),
            ready_path: Some("/metrics"),
            port: p.node_exporter,
            port_field: "ports.node_exporter",
            reads: &[],
            url: format!("http://127.0.0.1:{}/metrics", p.node_exporter),
            after: &[],
            workdir: None,
        },
        Spec {
            name: "alertmanager",
            program: program_path(&programs.alertmanager),
            args: vec![
                format!("--config.file={rendered}/alertmanager/alertmanager.yml"),
                format!("--storage.path={dir}/alertmanager"),
                format!("--web.listen-address=127.0.0.1:{}", p.alertmanager),
                // One instance: no cluster port (it would listen on every interface).
                "--cluster.listen-address=".into(),
            ],
            wrapper: None,
            environment: none(),
            reads_credentials: Vec::new(),
            ready_path: Some("/-/ready"),
            port: p.alertmanager,
            port_field: "ports.alertmanager",
            reads: &["alertmanager/"],
            url: format!("http://127.0.0.1:{}/", p.alertmanager),
            after: &[],
            workdir: None,
        },
        Spec {
            name: "prometheus",
            program: program_path(&programs.prometheus),
            args: vec![
                format!("--config.file={rendered}/prometheus/prometheus.yml"),
                format!("--storage.tsdb.path={dir}/prometheus"),
                format!("--web.listen-address=127.0.0.1:{}", p.prometheus),
            ],
            wrapper: None,
            environment: none(),
            reads_credentials: Vec::new(),
            ready_path: Some("/-/ready"),
            port: p.prometheus,
            port_field: "ports.prometheus",
            reads: &["prometheus/"],
            url: format!("http://127.0.0.1:{}/targets", p.prometheus),
            after: &[
                "alertmanager",
                "node-exporter",
                "admin-api",
                "http-source-connector",
            ],
            workdir: None,
        },
    ]);
    specs
}

#[cfg(test)]
mod tests {
    use super::expand_variables;

    #[test]
    fn variables_and_defaults_are_expanded() {
        // PATH and HOME are set for any test run; the other name is never set.
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            expand_variables("${HOME}/bin/tansu"),
            format!("{home}/bin/tansu")
        );
        assert_eq!(
            expand_variables("${KAFKA_PLATFORM_NEVER_SET_ANYWHERE:-~/.cache/tansu}"),
            "~/.cache/tansu"
        );
        assert_eq!(expand_variables("tansu"), "tansu");
        assert_eq!(expand_variables("broken ${OPEN"), "broken ${OPEN");
    }
}
