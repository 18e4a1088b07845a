//! The local platform end to end, real processes only: `stacks apply` of a SASL_SSL local
//! environment starts Apache Kafka (3 KRaft controllers and 3 brokers in three local zones,
//! TLS and SCRAM-SHA-512, each with the JMX exporter), a Kafka Connect worker, the admin API,
//! the connector, node_exporter, Alertmanager and Prometheus;
//! everything is then checked through the programs' own APIs (Prometheus's targets, rules and
//! queries, Alertmanager's webhook, the topic read by an rdkafka consumer) and `/proc`, never
//! through the tool's view of itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The workspace root (the local build command runs there).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The folder cargo puts this build's binaries in (`target/debug`).
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// `N` consecutive ports from a base nobody listens on now, nor 100 or 200 above it (where
/// the second and third controller and broker listen), all below the ports this machine lends
/// to outgoing connections (a connection of the running cluster could hold one of those).
fn free_ports<const N: usize>() -> [u16; N] {
    const LOWEST: u32 = 10_000;
    let bases = kafka_components::policy::ephemeral_ports().start() - LOWEST - 200 - N as u32;
    let seed = u64::from(std::process::id()) * 7919
        + u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        );
    for attempt in 0..200u64 {
        let base =
            u16::try_from(u64::from(LOWEST) + (seed + attempt * 331) % u64::from(bases)).unwrap();
        let free = (0..N as u16)
            .flat_map(|i| [0, 100, 200].map(|shift| base + i + shift))
            .all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return std::array::from_fn(|i| base + u16::try_from(i).unwrap());
        }
    }
    panic!("no free block of ports on 127.0.0.1");
}

/// The running (not zombie) processes whose environment marks them as `stack`'s: read from
/// `/proc`, independently of the state.
fn marked_processes(stack: &str) -> Vec<(i32, String)> {
    let mark = format!("IAC_STACK={stack}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|v| v == mark.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("Z");
        if state == "Z" || state == "X" {
            continue;
        }
        let resource = environ
            .split(|b| *b == 0)
            .find_map(|v| v.strip_prefix(b"IAC_RESOURCE="))
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .unwrap_or_default();
        found.push((pid, resource));
    }
    found
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Every file under `dir`, with its contents; but Kafka's offset and time indexes (`.index`,
/// `.timeindex`: offsets and file positions only, each preallocated to 10 MiB).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let index = path
            .extension()
            .is_some_and(|e| e == "index" || e == "timeindex");
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if index {
            continue;
        } else if let Ok(contents) = std::fs::read(&path) {
            found.push((path, contents));
        }
    }
    found
}

/// The generated secrets, read from the credentials folder (whose files must be mode 0600):
/// the services' passwords, every password of `secrets.yml`, and the lines of the broker's key.
fn generated_secrets(platform: &Platform) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = platform.credentials.as_ref().expect("a SASL_SSL platform");
    for (path, _) in files_under(dir.path()) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let mut secrets: Vec<String> = ["kafka-admin-api.password", "http-source-connector.password"]
        .into_iter()
        .map(|f| platform.credential(f).trim().to_owned())
        .collect();
    let password = regex::Regex::new(r#"password: "([^"]+)""#).unwrap();
    secrets.extend(
        password
            .captures_iter(&platform.credential("secrets.yml"))
            .map(|c| c[1].to_owned()),
    );
    let key = platform.credential(&format!("{}-broker-1.key", platform.name));
    secrets.extend(
        key.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .map(str::to_owned),
    );
    secrets
}

/// A webhook receiver: every body Alertmanager posts, as JSON.
struct Webhook {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut data = Vec::new();
                    let mut buffer = [0u8; 8192];
                    loop {
                        let Ok(n) = socket.read(&mut buffer).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        data.extend_from_slice(&buffer[..n]);
                        let text = String::from_utf8_lossy(&data).into_owned();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if data.len() < end + 4 + length {
                            continue;
                        }
                        if let Ok(body) = serde_json::from_slice(&data[end + 4..end + 4 + length]) {
                            store.lock().unwrap().push(body);
                        }
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                });
            }
        });
        Self { url, received }
    }

    /// Waits until an alert named `name` arrived with `status` (`firing`, `resolved`): the
    /// time it took.
    async fn wait_for(&self, name: &str, status: &str, limit: Duration) -> Duration {
        within(limit, &format!("{name} {status}"), || async {
            self.has(name, status, None)
        })
        .await
    }

    /// [`Webhook::wait_for`] an alert from the scrape job `job` (an alert whose expression
    /// reads two programs' metrics, told apart).
    async fn wait_for_job(&self, name: &str, status: &str, job: &str, limit: Duration) -> Duration {
        within(limit, &format!("{name} {status} from {job}"), || async {
            self.has(name, status, Some(job))
        })
        .await
    }

    /// Whether an alert named `name` arrived with `status` (`firing`, `resolved`), from the
    /// scrape job `job` if one is named.
    fn has(&self, name: &str, status: &str, job: Option<&str>) -> bool {
        self.received.lock().unwrap().iter().any(|body| {
            body["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|alert| {
                    let labels = &alert["labels"];
                    labels["alertname"] == name
                        && alert["status"] == status
                        && job.is_none_or(|job| labels["job"] == job)
                })
        })
    }
}

/// A local environment of its own: its own ports, state, rendered files and data.
struct Platform {
    name: String,
    envs: TempDir,
    state: TempDir,
    rendered: TempDir,
    /// The processes' data and logs.
    data: TempDir,
    /// The generated keys and passwords (SASL_SSL only).
    credentials: Option<TempDir>,
    prometheus: u16,
    admin_api: u16,
    /// The HTTP source connector's REST port.
    connector: u16,
    /// The Kafka Connect worker's REST port.
    connect_rest: u16,
    node_exporter: u16,
    /// The first broker's client and broker-to-broker ports.
    broker: u16,
    broker_internal: u16,
    /// The first controller's JMX exporter.
    jmx_controller: u16,
}

impl Platform {
    /// A local environment; `secured`: SASL_SSL, with its credentials in a folder of its own.
    fn new(prefix: &str, receiver: &str, secured: bool) -> Self {
        let kafka = std::env::var("KAFKA_PLATFORM_KAFKA_HOME").expect(
            "KAFKA_PLATFORM_KAFKA_HOME is unset: scripts/setup.sh fetches Kafka (run scripts/test.sh)",
        );
        let java = std::env::var("KAFKA_PLATFORM_JAVA").unwrap_or_else(|_| "java".to_owned());
        let name = format!("{prefix}{}", std::process::id());
        let [
            broker,
            broker_internal,
            controller,
            jmx_controller,
            jmx_broker,
            connect_rest,
            jmx_connect,
            admin_api,
            connector,
            prometheus,
            alertmanager,
            node_exporter,
        ] = free_ports::<12>();
        let envs = TempDir::new().unwrap();
        let data = TempDir::new().unwrap();
        let bin = binaries();
        for program in ["kafka-admin-api", "http-source-connector"] {
            assert!(
                bin.join(program).is_file(),
                "{} is missing: `cargo test --workspace` (scripts/test.sh) builds it, or run `cargo build -p services --bins`",
                bin.join(program).display()
            );
        }
        let text = format!(
            r#"
[local]
dir = "{data}"

[local.programs]
kafka = "{kafka}"
java = "{java}"
admin_api = "{admin}"
connector = "{conn}"

[ports]
broker_client = {broker}
broker_internal = {broker_internal}
controller = {controller}
jmx_exporter_controller = {jmx_controller}
jmx_exporter_broker = {jmx_broker}
connect_rest = {connect_rest}
jmx_exporter_connect = {jmx_connect}
admin_api = {admin_api}
http_source_connector = {connector}
prometheus = {prometheus}
alertmanager = {alertmanager}
node_exporter = {node_exporter}

[monitoring]
scrape_interval = "1s"
source_stalled_after = "6s"
alerts_pending_at_most = "2s"

[connector]
poll_interval = "1s"

[alerting]
group_wait = "1s"
group_interval = "1s"

[[alerting.receivers]]
name = "test"
webhook_url = "{receiver}"
"#,
            data = data.path().display(),
            admin = bin.join("kafka-admin-api").display(),
            conn = bin.join("http-source-connector").display(),
        );
        let credentials = secured.then(|| TempDir::new().unwrap());
        let security = credentials.as_ref().map_or(String::new(), |dir| {
            format!(
                "\n[security]\nprotocol = \"sasl_ssl\"\ncredentials_dir = \"{}\"\n",
                dir.path().display()
            )
        });
        std::fs::write(envs.path().join(format!("{name}.toml")), text + &security).unwrap();
        Self {
            name,
            envs,
            state: TempDir::new().unwrap(),
            rendered: TempDir::new().unwrap(),
            data,
            credentials,
            prometheus,
            admin_api,
            connector,
            connect_rest,
            node_exporter,
            broker,
            broker_internal,
            jmx_controller,
        }
    }

    /// A file of the credentials folder.
    fn credential(&self, file: &str) -> String {
        let dir = self.credentials.as_ref().expect("a SASL_SSL platform");
        std::fs::read_to_string(dir.path().join(file)).unwrap()
    }

    /// A Kafka client of the test's own for `bootstrap`, with the admin API's SCRAM user
    /// and password over TLS trusting the generated CA when `authenticated`.
    fn client(&self, bootstrap: u16, authenticated: bool) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", format!("127.0.0.1:{bootstrap}"));
        if authenticated {
            let dir = self.credentials.as_ref().expect("a SASL_SSL platform");
            config
                .set("security.protocol", "sasl_ssl")
                .set("sasl.mechanism", "SCRAM-SHA-512")
                .set("sasl.username", "kafka-admin-api")
                .set(
                    "sasl.password",
                    self.credential("kafka-admin-api.password").trim(),
                )
                .set(
                    "ssl.ca.location",
                    dir.path().join("ca.crt").display().to_string(),
                );
        }
        config
    }

    /// `stacks <verb> <this env> <args…>` on this environment's folders.
    fn process(&self, args: &[&str]) -> std::process::Command {
        let (verb, rest) = args.split_first().unwrap();
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("stacks"));
        command
            .current_dir(root())
            .arg(verb)
            .arg(&self.name)
            .args(rest)
            .env("STACKS_ENV_DIR", self.envs.path())
            .env("IAC_STATE_DIR", self.state.path())
            .env("STACKS_RENDER_DIR", self.rendered.path())
            .env("IAC_PASSPHRASE", "the local platform test's passphrase");
        command
    }

    /// The same, run to its end (at most 5 minutes).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::from_std(self.process(args));
        command.timeout(Duration::from_secs(300));
        command
    }

    fn stacks(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.command(args).assert()
    }

    fn prometheus(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.prometheus)
    }
}

impl Drop for Platform {
    /// Whatever the test did, nothing it started outlives it.
    fn drop(&mut self) {
        let _ = self.command(&["destroy", "--yes"]).output();
        for (pid, _) in marked_processes(&self.name) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

fn summary(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("Stack "))
        .unwrap_or_default()
        .split(" in ")
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Sends `request`, which must succeed: its answer.
async fn succeeds(request: reqwest::RequestBuilder) -> reqwest::Response {
    let answer = request.send().await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    answer
}

/// Polls `check` every 200 ms until it holds or `limit` passes; the time it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed()
}

async fn targets(client: &reqwest::Client, platform: &Platform) -> Vec<(String, String)> {
    let body = get(client, &platform.prometheus("/api/v1/targets")).await;
    body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                t["health"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Every query of the rendered dashboards whose metrics the local Prometheus has, with the
/// dashboard's node selector opened up; and the (dashboard, query) pairs whose metrics it
/// lacks.
async fn dashboard_queries(
    client: &reqwest::Client,
    platform: &Platform,
    rendered: &Path,
) -> (Vec<String>, Vec<(String, String)>) {
    let known: BTreeSet<String> = serde_json::from_value(
        get(
            client,
            &platform.prometheus("/api/v1/label/__name__/values"),
        )
        .await["data"]
            .clone(),
    )
    .unwrap();
    // Every dashboard query selects its series as `metric{node=~"$node"}`.
    let metric = regex::Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{").unwrap();
    let (mut queries, mut without) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(rendered.join("grafana/dashboards")).unwrap() {
        let entry = entry.unwrap();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap().replace("$node", ".*");
                let names: Vec<String> = metric
                    .captures_iter(&expr)
                    .map(|c| c[1].to_owned())
                    .collect();
                assert!(!names.is_empty(), "{expr} names no metric");
                if names.iter().all(|n| known.contains(n)) {
                    queries.push(expr);
                } else {
                    let file = entry.file_name().to_string_lossy().into_owned();
                    without.push((file, expr));
                }
            }
        }
    }
    (queries, without)
}

/// Every resource of a SASL_SSL local platform: the rendered folder; the CA's key and
/// certificate, a key and certificate for each of the 7 Kafka JVMs, 4 SCRAM passwords and
/// Grafana's, the credentials folder; the storage of the 6 KRaft nodes; 12 services.
const RESOURCES: usize = 1 + 2 + 14 + 5 + 1 + 6 + 12;

/// Makes a topic through the admin API (`body` as `POST /topics` takes it).
async fn create_topic(client: &reqwest::Client, platform: &Platform, body: Value) {
    let created = client
        .post(format!("http://127.0.0.1:{}/topics", platform.admin_api))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "{body}: {}",
        created.status()
    );
}

/// The ISR of every partition of `topic`, as the admin API reports it.
async fn isr(client: &reqwest::Client, platform: &Platform, topic: &str) -> Vec<Vec<i64>> {
    let url = format!("http://127.0.0.1:{}/topics/{topic}", platform.admin_api);
    let Ok(answer) = client.get(url).send().await else {
        return Vec::new();
    };
    let body: Value = answer.json().await.unwrap_or_default();
    body["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut isr: Vec<i64> = p["isr"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            isr.sort_unstable();
            isr
        })
        .collect()
}

/// A producer of the test's own (idempotent, `acks=all`) writing numbered records from 0 to
/// a topic, a batch of 500 at a time, until stopped.
struct Writer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    acknowledged: Arc<std::sync::atomic::AtomicU64>,
    /// When each acknowledged record was sent, and how long its acknowledgement took.
    latencies: Arc<std::sync::Mutex<Vec<(Instant, Duration)>>>,
    /// Every failed write's error.
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Writer {
    fn start(config: ClientConfig, topic: &str) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acknowledged = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stopped, counted, timed, topic) = (
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
            Arc::clone(&latencies),
            topic.to_owned(),
        );
        let task = tokio::spawn(async move {
            let producer: FutureProducer = config
                .clone()
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "5")
                // Longer than a broker's absence takes to be noticed (its session, 9 s).
                .set("message.timeout.ms", "120000")
                .create()
                .unwrap();
            let mut failed = Vec::new();
            let mut next = 0u64;
            while !stopped.load(Relaxed) {
                let sent_at = Instant::now();
                let batch: Vec<_> = (next..next + 500)
                    .map(|n| {
                        let value = n.to_string();
                        producer
                            .send_result(
                                FutureRecord::<str, str>::to(&topic)
                                    .key(&value)
                                    .payload(&value),
                            )
                            .map_err(|(e, _)| e.to_string())
                    })
                    .collect();
                next += 500;
                for sent in batch {
                    match sent {
                        Ok(delivery) => match delivery.await {
                            Ok(Ok(_)) => {
                                counted.fetch_add(1, Relaxed);
                                timed.lock().unwrap().push((sent_at, sent_at.elapsed()));
                            }
                            Ok(Err((e, _))) => failed.push(e.to_string()),
                            Err(_) => failed.push("cancelled".to_owned()),
                        },
                        Err(e) => failed.push(e),
                    }
                }
            }
            failed
        });
        Self {
            stop,
            acknowledged,
            latencies,
            task,
        }
    }

    /// The 99th percentile of the acknowledgement latency of the records sent in `during`.
    fn p99(&self, during: std::ops::Range<Instant>) -> Duration {
        let mut sent: Vec<Duration> = self
            .latencies
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| during.contains(at))
            .map(|(_, took)| *took)
            .collect();
        sent.sort_unstable();
        sent.get(sent.len() * 99 / 100).copied().unwrap_or_default()
    }

    fn acknowledged(&self) -> u64 {
        self.acknowledged.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops after the batch in flight: the records acknowledged and every failed write's
    /// error.
    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acknowledged = self.acknowledged;
        let failed = self.task.await.unwrap();
        (
            acknowledged.load(std::sync::atomic::Ordering::Relaxed),
            failed,
        )
    }
}

/// Sets the brokers' property `key` to `value` (a TOML value) in the environment file, in
/// place of any set before.
fn set_broker_property(platform: &Platform, key: &str, value: &str) {
    set_custom_properties(
        platform,
        &format!("[kafka_broker_custom_properties]\n\"{key}\" = {value}\n"),
    );
}

/// Replaces the custom property tables at the end of the environment file with `tables`.
fn set_custom_properties(platform: &Platform, tables: &str) {
    const FIRST: &str = "\n[kafka_broker_custom_properties]\n";
    let file = platform.envs.path().join(format!("{}.toml", platform.name));
    let text = std::fs::read_to_string(&file).unwrap();
    let (before, _) = text.split_once(FIRST).unwrap_or((&text, ""));
    std::fs::write(&file, format!("{before}\n{tables}")).unwrap();
}

/// Points the environment file at a new build of the admin API: the same program at a
/// path of the platform's own.
fn new_admin_api_build(platform: &Platform) {
    let built = binaries().join("kafka-admin-api");
    let new = platform.envs.path().join("kafka-admin-api");
    if std::fs::hard_link(&built, &new).is_err() {
        std::fs::copy(&built, &new).unwrap();
    }
    let file = platform.envs.path().join(format!("{}.toml", platform.name));
    let text = std::fs::read_to_string(&file).unwrap();
    let old = format!("admin_api = \"{}\"", built.display());
    assert!(text.contains(&old), "{text}");
    let new = format!("admin_api = \"{}\"", new.display());
    std::fs::write(&file, text.replace(&old, &new)).unwrap();
}

/// What rolling the brokers printed and measured.
struct Rolled {
    printed: String,
    /// The apply that rolled them, from its start to its end.
    took: Duration,
    /// The producer's 99th percentile acknowledgement latency during the roll, and in the
    /// seconds before it.
    p99: Duration,
    steady_p99: Duration,
    /// Records written through the roll.
    records: u64,
    /// The progress lines of the three brokers' restarts.
    restarts: Vec<String>,
}

/// Rolls the brokers by a changed property while a producer writes and an observer samples
/// the cluster's health (see the end-to-end test); then a property they cannot start with
/// stops the roll after the first, and fixing it completes the roll.
async fn roll_the_brokers(platform: &Platform, client: &reqwest::Client) -> Rolled {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let stack = &platform.name;
    let brokers = || -> Vec<i32> {
        (1..=3)
            .map(|n| pid_of(stack, &format!("broker-{n}")))
            .collect()
    };
    create_topic(
        client,
        platform,
        serde_json::json!({"name": "e2e-rolled", "partitions": 3, "replication_factor": 3}),
    )
    .await;
    let watching = Arc::new(AtomicBool::new(true));
    let observer = tokio::spawn({
        let (client, watching) = (client.clone(), Arc::clone(&watching));
        let url = format!("http://127.0.0.1:{}/cluster/health", platform.admin_api);
        async move {
            // Each health the admin API answered, and each answer that was not one.
            let mut samples: Vec<(usize, u64)> = Vec::new();
            let mut unanswered: Vec<String> = Vec::new();
            while watching.load(Relaxed) {
                if let Ok(answer) = client.get(&url).send().await
                    && let Ok(health) = answer.json::<Value>().await
                {
                    match (
                        health["brokers"].as_array(),
                        health["under_replicated_partitions"].as_u64(),
                    ) {
                        (Some(brokers), Some(under)) => samples.push((brokers.len(), under)),
                        _ => unanswered.push(health.to_string()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (samples, unanswered)
        }
    });
    let writer = Writer::start(platform.client(platform.broker, true), "e2e-rolled");
    let steady_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = brokers();
    set_broker_property(platform, "log.retention.hours", "100");
    let preview = stdout(&platform.stacks(&["preview"]).success());
    assert!(
        preview
            .contains("\nRolling, one at a time:\n  kafka: broker-1 → broker-2 → broker-3, gate: "),
        "{preview}"
    );
    let began = Instant::now();
    let applied = stdout(&platform.stacks(&["apply", "--yes"]).success());
    let took = began.elapsed();
    assert!(
        summary(&applied).contains(": 0 created, 1 updated, 3 replaced, 0 deleted, "),
        "the rendered folder and the three brokers: {applied}"
    );
    // Each broker stopped (its old process deleted), then started and waited for until it
    // was back and in sync: in order, one after another.
    let line = |what: String| -> (usize, String) {
        let at = applied
            .find(&what)
            .unwrap_or_else(|| panic!("{what}: {applied}"));
        let took = applied[at + what.len()..]
            .lines()
            .next()
            .unwrap_or_default();
        (at, took.trim_matches([' ', '(', ')']).to_owned())
    };
    let mut restarts = Vec::new();
    let mut last = 0;
    for n in 1..=3 {
        let (stopped_at, stopped) = line(format!("broker-{n}: deleting done"));
        let (back_at, back) = line(format!("broker-{n}: replacing done"));
        assert!(
            last < stopped_at && stopped_at < back_at,
            "one after another, in order: {applied}"
        );
        last = back_at;
        restarts.push(format!(
            "broker-{n} stopped in {stopped}, back and in sync in {back}"
        ));
    }
    for (n, pid) in brokers().into_iter().enumerate() {
        assert_ne!(pid, before[n], "broker-{} restarted", n + 1);
    }
    let (p99, steady_p99) = (
        writer.p99(began..Instant::now()),
        writer.p99(steady_from..began),
    );
    let (records, failed) = writer.stop().await;
    watching.store(false, Relaxed);
    let (samples, unanswered) = observer.await.unwrap();
    assert!(
        unanswered.is_empty(),
        "the admin API answers its cluster's health throughout the roll: {unanswered:?}"
    );
    assert!(
        samples.iter().all(|(live, _)| *live >= 2),
        "never two brokers away: {samples:?}"
    );
    // Each restart is a dip of the live brokers; a new one begins only after the cluster was
    // whole (three live, nothing under-replicated) again.
    let (mut dips, mut away) = (0, false);
    for &(live, under_replicated) in &samples {
        if live < 3 && !away {
            dips += 1;
            away = true;
        } else if live == 3 && under_replicated == 0 {
            away = false;
        }
    }
    assert_eq!(
        dips, 3,
        "three restarts, the cluster whole between them: {samples:?}"
    );
    assert_eq!(failed, Vec::<String>::new(), "no write failed");
    let (_, written) = read_all(&platform.client(platform.broker, true), "e2e-rolled");
    let mut numbers: Vec<u64> = written.iter().map(|r| r.parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..records).collect::<Vec<_>>(),
        "every record once, nothing else"
    );

    // A value the brokers refuse: the first fails to start, with its log; the roll stops
    // there and the other two are untouched. Fixed, the next apply finishes the roll.
    let rolled = brokers();
    set_broker_property(platform, "log.retention.hours", "\"soon\"");
    let refused = platform.stacks(&["apply", "--yes"]).code(3);
    let out = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.get_output().stderr)
    );
    assert!(
        out.contains("failed  broker-1: ")
            && out.contains("logs/broker-1.log ends:")
            && out.contains("log.retention.hours"),
        "{out}"
    );
    assert!(out.contains("skipped broker-2 (needs broker-1)"), "{out}");
    let untouched: Vec<i32> = (2..=3)
        .map(|n| pid_of(stack, &format!("broker-{n}")))
        .collect();
    assert_eq!(untouched, rolled[1..], "broker-2 and broker-3 untouched");
    set_broker_property(platform, "log.retention.hours", "200");
    let fixed = stdout(&platform.stacks(&["apply", "--yes"]).success());
    assert!(summary(&fixed).contains(" 0 failed, 0 skipped"), "{fixed}");
    assert!(brokers().iter().zip(&rolled).all(|(now, then)| now != then));

    // Ctrl-C while the first broker is down: it comes back and its gate passes, the roll
    // stops there (exit 130), the next apply rolls the other two.
    let rolled = brokers();
    set_broker_property(platform, "log.retention.hours", "300");
    let interrupted = interrupt_when(platform, "broker-1: deleting done");
    assert_eq!(
        interrupted.status.code(),
        Some(130),
        "{}",
        interrupted.printed
    );
    assert!(
        interrupted.printed.contains("broker-1: replacing done")
            && interrupted
                .printed
                .contains("skipped broker-2 (not started: the stop request)"),
        "{}",
        interrupted.printed
    );
    let now = brokers();
    assert_ne!(now[0], rolled[0], "broker-1 restarted");
    assert_eq!(now[1..], rolled[1..], "broker-2 and broker-3 untouched");
    let health = get(
        client,
        &format!("http://127.0.0.1:{}/cluster/health", platform.admin_api),
    )
    .await;
    assert_eq!(
        health["brokers"].as_array().map(Vec::len),
        Some(3),
        "{health}"
    );
    // With a new build of the admin API, which the gate reads through: it is back before
    // the roll goes on.
    new_admin_api_build(platform);
    let finished = stdout(&platform.stacks(&["apply", "--yes"]).success());
    assert!(
        summary(&finished).contains(": 0 created, 0 updated, 3 replaced, 0 deleted, "),
        "the admin API, broker-2 and broker-3 only: {finished}"
    );
    let at = |line: &str| {
        finished
            .find(line)
            .unwrap_or_else(|| panic!("{line}: {finished}"))
    };
    assert!(at("admin-api: replacing done") < at("broker-2: deleting done"));
    assert!(brokers().iter().zip(&rolled).all(|(now, then)| now != then));

    // A controller property rolls the controllers, the active one (the quorum's leader, as
    // its exporter reports it) last.
    let exporter = format!("http://127.0.0.1:{}/metrics", platform.jmx_controller);
    let page = succeeds(client.get(exporter)).await.text().await.unwrap();
    let leader = sample(&page, "kafka_server_raft_metrics_current_leader").unwrap() as u32;
    let active = format!("controller-{}", leader - 9990);
    set_custom_properties(
        platform,
        "[kafka_broker_custom_properties]\n\"log.retention.hours\" = 300\n\n[kafka_controller_custom_properties]\n\"metadata.max.idle.interval.ms\" = 600\n",
    );
    let controllers = stdout(&platform.stacks(&["apply", "--yes"]).success());
    assert!(
        summary(&controllers).contains(": 0 created, 1 updated, 3 replaced, 0 deleted, "),
        "{controllers}"
    );
    let back = |n: u32| {
        controllers
            .find(&format!("controller-{n}: replacing done"))
            .unwrap_or_else(|| panic!("controller-{n}: {controllers}"))
    };
    let last = (1..=3).max_by_key(|&n| back(n)).unwrap();
    assert_eq!(
        format!("controller-{last}"),
        active,
        "the active controller last: {controllers}"
    );
    Rolled {
        printed: applied + &out + &fixed + &interrupted.printed + &finished + &controllers,
        took,
        p99,
        steady_p99,
        records,
        restarts,
    }
}

/// An apply interrupted by a SIGINT once it printed `line`: how it ended and what it printed.
struct Interrupted {
    status: std::process::ExitStatus,
    printed: String,
}

/// Runs `apply --yes`, sends it a SIGINT (a Ctrl-C) as soon as it prints `line`, and waits
/// for it to end.
fn interrupt_when(platform: &Platform, line: &str) -> Interrupted {
    use std::io::Read as _;
    let mut child = platform
        .process(&["apply", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let printed = Arc::new(Mutex::new(String::new()));
    let reader = std::thread::spawn({
        let (mut out, printed) = (child.stdout.take().unwrap(), Arc::clone(&printed));
        move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut chunk) {
                printed
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    while !printed.lock().unwrap().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no `{line}` within 3 minutes: {}",
            printed.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let printed = printed.lock().unwrap().clone() + &errors;
    Interrupted { status, printed }
}

/// The high watermark of each partition of `topic` and the records before it, counted by
/// reading them all with a client of the test's own.
fn read_all(config: &ClientConfig, topic: &str) -> (Vec<i64>, Vec<String>) {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "e2e-counter")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = rdkafka::TopicPartitionList::new();
    let mut ends = Vec::new();
    for partition in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        ends.push(high);
        assignment
            .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let mut read = vec![0i64; ends.len()];
    let deadline = Instant::now() + Duration::from_secs(120);
    while read.iter().zip(&ends).any(|(read, end)| read < end) {
        assert!(
            Instant::now() < deadline,
            "{topic}: read {read:?} of {ends:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_secs(1)) {
            let message = message.unwrap();
            read[message.partition() as usize] = message.offset() + 1;
            records
                .push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
    }
    (ends, records)
}

/// The value of the first series `name` on a Prometheus text page, whatever its labels.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(labels) => labels.split_once('}')?.1,
            None => rest,
        };
        rest.strip_prefix(' ')?.parse().ok()
    })
}

/// The pid of the process of `resource`.
fn pid_of(stack: &str, resource: &str) -> i32 {
    marked_processes(stack)
        .into_iter()
        .find(|(_, r)| r == resource)
        .unwrap_or_else(|| panic!("{resource} is not running"))
        .0
}

fn kill_9(pid: i32) {
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_platform_runs_for_real_heals_and_leaves_nothing_behind() {
    let webhook = Webhook::start().await;
    let platform = Platform::new("e2e", &webhook.url, true);
    let client = reqwest::Client::new();
    let stack = platform.name.clone();

    let preview = platform.stacks(&["preview", "--detailed-exitcode"]).code(2);
    assert!(
        stdout(&preview).contains(&format!("Resources: {RESOURCES} to create")),
        "{}",
        stdout(&preview)
    );

    // Apply, then every Prometheus target UP.
    let started = Instant::now();
    let apply = platform.stacks(&["apply", "--yes"]).success();
    let out = stdout(&apply);
    let applied_in = started.elapsed();
    assert_eq!(
        summary(&out),
        format!(
            "Stack {stack}: {RESOURCES} created, 0 updated, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 0 skipped"
        ),
        "{out}"
    );
    for what in [
        "controller-1",
        "broker-3",
        "connect-1",
        "prometheus",
        "alertmanager",
        "admin-api",
        "http-source-connector",
    ] {
        assert!(out.contains(&format!("  {what} ")), "what to open: {out}");
    }
    within(Duration::from_secs(90), "every target UP", || async {
        let targets = targets(&client, &platform).await;
        targets.len() == 11 && targets.iter().all(|(_, health)| health == "up")
    })
    .await;
    let all_up = started.elapsed();
    let jobs: BTreeSet<String> = targets(&client, &platform)
        .await
        .into_iter()
        .map(|(job, _)| job)
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from(
            [
                "prometheus",
                "kafka-controller",
                "kafka-broker",
                "kafka-connect",
                "node",
                "kafka-admin-api",
                "http-source-connector"
            ]
            .map(String::from)
        )
    );
    let processes = marked_processes(&stack);
    let resident: u64 = processes.iter().map(|(pid, _)| rss_kib(*pid)).sum();
    assert_eq!(processes.len(), 12, "{processes:?}");

    // Every alert rule loaded.
    let rules = get(&client, &platform.prometheus("/api/v1/rules")).await;
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, 13, "{rules}");

    // A second apply changes nothing; a preview agrees.
    let again_started = Instant::now();
    let again = platform.stacks(&["apply", "--yes"]).success();
    let noop = again_started.elapsed();
    assert_eq!(
        summary(&stdout(&again)),
        format!(
            "Stack {stack}: 0 created, 0 updated, 0 replaced, 0 deleted, {RESOURCES} unchanged, 0 failed, 0 skipped"
        )
    );
    platform.stacks(&["preview", "--detailed-exitcode"]).code(0);
    let mut printed = out + &stdout(&again);

    // A topic made through the admin API has three replicas, all in sync, on three brokers.
    create_topic(
        &client,
        &platform,
        serde_json::json!({"name": "e2e-orders", "partitions": 3, "replication_factor": 3}),
    )
    .await;
    assert_eq!(
        isr(&client, &platform, "e2e-orders").await,
        vec![vec![1, 2, 3]; 3]
    );

    // The connector's topic holds the admin API's topic list: a topic made through the API
    // arrives there as a record keyed by its name, read by a consumer of our own.
    let consumer: StreamConsumer = platform
        .client(platform.broker, true)
        .set("group.id", format!("{stack}-reader"))
        // In case the topic is made after the reader subscribes.
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer
        .subscribe(&[&format!("{stack}.admin-api.topics")])
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut keys = BTreeSet::new();
    while !keys.contains("e2e-orders") {
        assert!(
            Instant::now() < deadline,
            "e2e-orders never reached the topic: {keys:?}"
        );
        if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await
            && let Some(key) = message.key()
        {
            keys.insert(String::from_utf8_lossy(key).into_owned());
        }
    }
    drop(consumer);

    // Without TLS and SCRAM no listener of a broker answers.
    for (port, what) in [
        (platform.broker, "a PLAINTEXT client of the client listener"),
        (
            platform.broker_internal,
            "a PLAINTEXT client of the brokers' listener",
        ),
    ] {
        let refused: BaseConsumer = platform.client(port, false).create().unwrap();
        assert!(
            refused
                .fetch_metadata(None, Duration::from_secs(5))
                .is_err(),
            "{what} got metadata"
        );
    }

    // The Connect worker runs Kafka's file connectors: a source reads a file of 100 lines
    // into a topic and a sink writes the topic to another file, each line once. A sink that
    // cannot open its file fails its task: ConnectorTaskFailed fires through Alertmanager,
    // and resolves once that connector is deleted.
    let files = TempDir::new().unwrap();
    let lines: Vec<String> = (0..100).map(|n| format!("line {n}")).collect();
    let (source, sink) = (files.path().join("in.txt"), files.path().join("out.txt"));
    std::fs::write(&source, lines.join("\n") + "\n").unwrap();
    create_topic(
        &client,
        &platform,
        serde_json::json!({"name": "e2e-file", "partitions": 1, "replication_factor": 3}),
    )
    .await;
    let connect = format!("http://127.0.0.1:{}/connectors", platform.connect_rest);
    let package = "org.apache.kafka.connect.file.FileStream";
    for (name, class, file, topic) in [
        (
            "e2e-file-source",
            "Source",
            source.clone(),
            ("topic", "e2e-file"),
        ),
        (
            "e2e-file-sink",
            "Sink",
            sink.clone(),
            ("topics", "e2e-file"),
        ),
        (
            "e2e-failing-sink",
            "Sink",
            files.path().join("no such folder/out.txt"),
            ("topics", "e2e-file"),
        ),
    ] {
        let created = client
            .post(&connect)
            .json(&serde_json::json!({"name": name, "config": {
                "connector.class": format!("{package}{class}Connector"),
                "tasks.max": "1",
                "file": file.display().to_string(),
                topic.0: topic.1,
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            created.status(),
            201,
            "{name}: {}",
            created.text().await.unwrap()
        );
    }
    within(
        Duration::from_secs(90),
        "the sink wrote every line",
        || async { std::fs::read_to_string(&sink).is_ok_and(|out| out.lines().eq(lines.iter())) },
    )
    .await;
    webhook
        .wait_for("ConnectorTaskFailed", "firing", Duration::from_secs(90))
        .await;
    succeeds(client.delete(format!("{connect}/e2e-failing-sink"))).await;
    webhook
        .wait_for("ConnectorTaskFailed", "resolved", Duration::from_secs(90))
        .await;

    // A connector that cannot start fails as a whole: MirrorMaker's source connector, its
    // source cluster's name resolving nowhere, fails as the worker starts it (its admin
    // client has no address to reach). ConnectorFailed fires from the worker's own metric
    // and resolves once the connector is deleted.
    let created = client
        .post(&connect)
        .json(
            &serde_json::json!({"name": "e2e-failing-mirror", "config": {
                "connector.class": "org.apache.kafka.connect.mirror.MirrorSourceConnector",
                "source.cluster.alias": "gone",
                "target.cluster.alias": "local",
                "source.cluster.bootstrap.servers": "source.invalid:9092",
                "target.cluster.bootstrap.servers": "source.invalid:9092",
                "topics": "e2e-.*",
            }}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    within(
        Duration::from_secs(60),
        "the worker reports the mirror connector failed",
        || async {
            let status = client
                .get(format!("{connect}/e2e-failing-mirror/status"))
                .send()
                .await;
            match status {
                Ok(answer) => answer
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|status| status["connector"]["state"] == "FAILED"),
                Err(_) => false,
            }
        },
    )
    .await;
    webhook
        .wait_for_job(
            "ConnectorFailed",
            "firing",
            "kafka-connect",
            Duration::from_secs(90),
        )
        .await;
    succeeds(client.delete(format!("{connect}/e2e-failing-mirror"))).await;
    webhook
        .wait_for_job(
            "ConnectorFailed",
            "resolved",
            "kafka-connect",
            Duration::from_secs(90),
        )
        .await;

    // Every query of the broker, controller and Connect dashboards returns data from the
    // running platform.
    let rendered = platform.rendered.path().join(&stack);
    within(
        Duration::from_secs(60),
        "metrics for every panel",
        || async {
            dashboard_queries(&client, &platform, &rendered)
                .await
                .1
                .is_empty()
        },
    )
    .await;
    let (queries, _) = dashboard_queries(&client, &platform, &rendered).await;
    for query in &queries {
        within(
            Duration::from_secs(60),
            &format!("data for `{query}`"),
            || async {
                let url = platform.prometheus("/api/v1/query");
                let body: Value = client
                    .get(&url)
                    .query(&[("query", query.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["data"]["result"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
            },
        )
        .await;
    }

    // kill -9 of the admin API: the connector's source alert fires through the real
    // Alertmanager into our webhook; refresh reports the service gone; apply restarts it;
    // the alert resolves.
    kill_9(pid_of(&stack, "admin-api"));
    let fired = webhook
        .wait_for("ConnectorSourceStalled", "firing", Duration::from_secs(90))
        .await;
    webhook
        .wait_for("InstanceDown", "firing", Duration::from_secs(60))
        .await;
    let refresh = platform.stacks(&["refresh"]).success();
    assert!(
        stdout(&refresh).contains("admin-api"),
        "refresh reports the dead service: {}",
        stdout(&refresh)
    );
    let healed = platform.stacks(&["apply", "--yes"]).success();
    assert_eq!(
        summary(&stdout(&healed)),
        format!(
            "Stack {stack}: 1 created, 0 updated, 0 replaced, 0 deleted, {} unchanged, 0 failed, 0 skipped",
            RESOURCES - 1
        ),
        "{}",
        stdout(&healed)
    );
    printed += &stdout(&healed);
    webhook
        .wait_for(
            "ConnectorSourceStalled",
            "resolved",
            Duration::from_secs(90),
        )
        .await;
    webhook
        .wait_for("InstanceDown", "resolved", Duration::from_secs(60))
        .await;

    // A zone goes away (kill -9 of local-b's controller and broker) while a producer of our
    // own writes numbered records with acks=all and the connector keeps producing: the admin
    // API keeps answering with the ISR shrunk to the two brokers left, UnderReplicatedPartitions
    // fires; refresh reports both gone, apply starts them again, the ISR is whole again and the
    // alert resolves, and no leader was elected uncleanly. Every acknowledged record is then
    // in the topic exactly once, nothing failed, and the connector's topic holds exactly what
    // the connector says it produced. A consumer group that committed at the start and never
    // read lags by all of it.
    let stalled: BaseConsumer = platform
        .client(platform.broker, true)
        .set("group.id", "e2e-stalled")
        .create()
        .unwrap();
    let mut start = rdkafka::TopicPartitionList::new();
    for partition in 0..3 {
        start
            .add_partition_offset("e2e-orders", partition, rdkafka::Offset::Offset(0))
            .unwrap();
    }
    stalled.commit(&start, CommitMode::Sync).unwrap();
    drop(stalled);
    let writer = Writer::start(platform.client(platform.broker, true), "e2e-orders");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let zone_lost = Instant::now();
    kill_9(pid_of(&stack, "controller-2"));
    kill_9(pid_of(&stack, "broker-2"));
    within(
        Duration::from_secs(60),
        "the ISR without broker 2",
        || async { isr(&client, &platform, "e2e-orders").await == vec![vec![1, 3]; 3] },
    )
    .await;
    let health = get(
        &client,
        &format!("http://127.0.0.1:{}/cluster/health", platform.admin_api),
    )
    .await;
    assert_eq!(
        (&health["healthy"], &health["brokers"]),
        (&Value::Bool(false), &serde_json::json!([1, 3])),
        "{health}"
    );
    assert!(
        health["under_replicated_partitions"].as_u64() > Some(0),
        "{health}"
    );
    // A topic of 3 replicas cannot be made with a zone away: a 409 to retry, not a 400.
    let refused = client
        .post(format!("http://127.0.0.1:{}/topics", platform.admin_api))
        .json(
            &serde_json::json!({"name": "e2e-zone-lost", "partitions": 1, "replication_factor": 3}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], "insufficient_brokers", "{body}");
    let urp_fired = webhook
        .wait_for(
            "UnderReplicatedPartitions",
            "firing",
            Duration::from_secs(90),
        )
        .await;
    let refresh = stdout(&platform.stacks(&["refresh"]).success());
    for gone in ["controller-2", "broker-2"] {
        assert!(refresh.contains(gone), "refresh reports {gone}: {refresh}");
    }
    let restarted = stdout(&platform.stacks(&["apply", "--yes"]).success());
    assert!(summary(&restarted).contains(": 2 created, "), "{restarted}");
    printed += &restarted;
    within(Duration::from_secs(120), "the ISR whole again", || async {
        isr(&client, &platform, "e2e-orders").await == vec![vec![1, 2, 3]; 3]
    })
    .await;
    webhook
        .wait_for(
            "UnderReplicatedPartitions",
            "resolved",
            Duration::from_secs(90),
        )
        .await;
    within(Duration::from_secs(60), "the cluster healthy", || async {
        let url = format!("http://127.0.0.1:{}/cluster/health", platform.admin_api);
        let health = get(&client, &url).await;
        health["healthy"] == Value::Bool(true) && health["brokers"] == serde_json::json!([1, 2, 3])
    })
    .await;
    let zone_back = zone_lost.elapsed();
    // ConsumerLag's threshold: 10,000 records behind.
    within(
        Duration::from_secs(60),
        "10,500 records written",
        || async { writer.acknowledged() > 10_500 },
    )
    .await;
    webhook
        .wait_for("ConsumerLag", "firing", Duration::from_secs(60))
        .await;
    let (acknowledged, failed) = writer.stop().await;
    // Every leader the zone's loss and return made came from the in-sync replicas.
    assert!(
        !webhook.has("UncleanLeaderElections", "firing", None),
        "a lost zone is no unclean leader election"
    );
    assert_eq!(failed, Vec::<String>::new(), "no write failed");
    let (_, records) = read_all(&platform.client(platform.broker, true), "e2e-orders");
    let mut numbers: Vec<u64> = records.iter().map(|r| r.parse().unwrap()).collect();
    numbers.sort_unstable();
    let written = numbers.len();
    numbers.dedup();
    assert_eq!(written, numbers.len(), "no record twice");
    assert_eq!(
        numbers,
        (0..acknowledged).collect::<Vec<_>>(),
        "every acknowledged record, nothing else"
    );
    let connector = format!("http://127.0.0.1:{}", platform.connector);
    let name = format!("{stack}-admin-api-topics");
    succeeds(client.put(format!("{connector}/connectors/{name}/pause"))).await;
    // A poll in progress finishes and its records are acknowledged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = succeeds(client.get(format!("{connector}/metrics")))
        .await
        .text()
        .await
        .unwrap();
    let produced = sample(&page, "http_source_records_produced_total").unwrap();
    let (ends, _) = read_all(
        &platform.client(platform.broker, true),
        &format!("{stack}.admin-api.topics"),
    );
    assert_eq!(
        ends.iter().sum::<i64>() as f64,
        produced,
        "the connector's topic holds what it produced, once"
    );
    succeeds(client.put(format!("{connector}/connectors/{name}/resume"))).await;

    // An operator lowers the connector's topic's max.message.bytes below its records: the
    // broker refuses the next, the connector fails with the broker's reason, and
    // ConnectorFailed fires through Alertmanager. The limit restored and the connector
    // restarted, it runs again and the alert resolves.
    let topic = format!(
        "http://127.0.0.1:{}/topics/{stack}.admin-api.topics",
        platform.admin_api
    );
    let limit = |bytes: &str| serde_json::json!({"configs": {"max.message.bytes": bytes}});
    succeeds(client.put(&topic).json(&limit("16"))).await;
    let failed_at = Instant::now();
    webhook
        .wait_for_job(
            "ConnectorFailed",
            "firing",
            "http-source-connector",
            Duration::from_secs(90),
        )
        .await;
    let status = get(&client, &format!("{connector}/connectors/{name}/status")).await;
    assert_eq!(status["connector"]["state"], "FAILED", "{status}");
    assert!(
        status["connector"]["trace"]
            .as_str()
            .is_some_and(|trace| trace.contains("too large")),
        "the broker's reason: {status}"
    );
    let connector_failed = failed_at.elapsed();
    succeeds(client.put(&topic).json(&limit("1048588"))).await;
    succeeds(client.post(format!("{connector}/connectors/{name}/restart"))).await;
    webhook
        .wait_for_job(
            "ConnectorFailed",
            "resolved",
            "http-source-connector",
            Duration::from_secs(90),
        )
        .await;
    let status = get(&client, &format!("{connector}/connectors/{name}/status")).await;
    assert_eq!(status["connector"]["state"], "RUNNING", "{status}");

    // A broker property set in the environment file rolls the brokers: one at a time, each
    // only when no partition would fall under its min ISR without it, the next once it is
    // back and nothing is under-replicated, while a producer writes with acks=all. Nothing
    // fails, is lost or is written twice, and an observer of its own, sampling the cluster's
    // health every 200 ms, never sees two brokers away and sees the cluster whole between
    // two restarts.
    let roll = roll_the_brokers(&platform, &client).await;
    printed += &roll.printed;

    // Two brokers away: every partition falls under its min ISR of 2, which the broker left
    // reports, and the partitions of a topic of one replica on them have no leader. Then two
    // controllers away: the quorum has no leader, and no controller is active. The alerts
    // fire; one apply starts the four again and they resolve, and Kafka counts the return of
    // the single replicas as unclean elections (they were no longer in sync), which fires too.
    create_topic(
        &client,
        &platform,
        serde_json::json!({
            "name": "e2e-single", "partitions": 3, "replication_factor": 1,
            "configs": {"min.insync.replicas": "1"}
        }),
    )
    .await;
    kill_9(pid_of(&stack, "broker-2"));
    kill_9(pid_of(&stack, "broker-3"));
    for alert in ["UnderMinIsrPartitions", "OfflinePartitions"] {
        webhook
            .wait_for(alert, "firing", Duration::from_secs(90))
            .await;
    }
    kill_9(pid_of(&stack, "controller-1"));
    kill_9(pid_of(&stack, "controller-3"));
    webhook
        .wait_for("ActiveControllerCount", "firing", Duration::from_secs(90))
        .await;
    platform.stacks(&["refresh"]).success();
    let restarted = stdout(&platform.stacks(&["apply", "--yes"]).success());
    assert!(summary(&restarted).contains(": 4 created, "), "{restarted}");
    printed += &restarted;
    within(Duration::from_secs(120), "the ISR whole again", || async {
        isr(&client, &platform, "e2e-orders").await == vec![vec![1, 2, 3]; 3]
    })
    .await;
    for alert in [
        "UnderMinIsrPartitions",
        "OfflinePartitions",
        "ActiveControllerCount",
    ] {
        webhook
            .wait_for(alert, "resolved", Duration::from_secs(90))
            .await;
    }
    webhook
        .wait_for("UncleanLeaderElections", "firing", Duration::from_secs(60))
        .await;

    // Every generated secret is only in its 0600 file: not in the logs, the data, the rendered
    // files, the state or anything the CLI printed.
    let secrets = generated_secrets(&platform);
    assert!(secrets.len() >= 6, "{} secrets", secrets.len());
    let mut looked_in = files_under(platform.data.path());
    looked_in.extend(files_under(platform.rendered.path()));
    looked_in.extend(files_under(platform.state.path()));
    looked_in.push((PathBuf::from("(printed)"), printed.into_bytes()));
    // One search per file for all of them: the Kafka data is hundreds of MiB.
    let any_secret = regex::bytes::Regex::new(
        &secrets
            .iter()
            .map(|secret| regex::escape(secret))
            .collect::<Vec<_>>()
            .join("|"),
    )
    .unwrap();
    for (path, contents) in &looked_in {
        assert!(
            !any_secret.is_match(contents),
            "a generated secret is in {}",
            path.display()
        );
    }

    // Destroy stops every process and leaves none behind; its ports are free again.
    let destroy = platform.stacks(&["destroy", "--yes"]).success();
    assert_eq!(
        summary(&stdout(&destroy)),
        format!(
            "Stack {stack}: 0 created, 0 updated, 0 replaced, {RESOURCES} deleted, 0 unchanged, 0 failed, 0 skipped"
        )
    );
    assert_eq!(marked_processes(&stack), Vec::new());
    assert!(
        !platform.data.path().join("broker-1/data").exists(),
        "the data goes with the credentials that secured it"
    );
    assert!(TcpListener::bind(("127.0.0.1", platform.prometheus)).is_ok());
    assert!(TcpListener::bind(("127.0.0.1", platform.broker)).is_ok());
    assert!(!platform.rendered.path().join(&stack).exists());
    println!(
        "local platform: apply {:.1}s, all targets UP {:.1}s after the apply began, resident {} MiB for {} processes, no-op apply {:.2}s, source alert fired {:.1}s after the kill, ConnectorFailed fired {:.1}s after the topic's limit fell, a lost zone's alert fired {:.1}s after the kill and the zone was whole again {:.1}s after it, {} records written through it (0 failed, 0 lost, 0 twice), the connector's {} records once each; the brokers rolled in {:.1}s ({}), {} records written through the roll (0 failed, 0 lost, 0 twice), p99 acknowledgement {} ms during it, {} ms before",
        applied_in.as_secs_f64(),
        all_up.as_secs_f64(),
        resident / 1024,
        processes.len(),
        noop.as_secs_f64(),
        fired.as_secs_f64(),
        connector_failed.as_secs_f64(),
        urp_fired.as_secs_f64(),
        zone_back.as_secs_f64(),
        acknowledged,
        produced,
        roll.took.as_secs_f64(),
        roll.restarts.join("; "),
        roll.records,
        roll.p99.as_millis(),
        roll.steady_p99.as_millis(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_refused_naming_the_env_file_field() {
    let platform = Platform::new("taken", "http://127.0.0.1:9/", false);
    let _squatter = TcpListener::bind(("127.0.0.1", platform.node_exporter)).unwrap();
    let failed = platform
        .stacks(&["apply", "--yes", "--target", "node-exporter"])
        .code(3);
    let out = stdout(&failed);
    let file = platform.envs.path().join(format!("{}.toml", platform.name));
    assert!(
        out.contains(&format!(
            "127.0.0.1:{} is already taken by another process: stop it, or change ports.node_exporter in {}",
            platform.node_exporter,
            file.display()
        )),
        "{out}"
    );
    assert!(summary(&out).contains(" 1 failed, "), "{out}");
    assert_eq!(marked_processes(&platform.name), Vec::new());

    // A Kafka listener's port (the first broker's client port), which the broker is not
    // probed on: refused the same way before the JVM starts, its field named.
    let _squatter = TcpListener::bind(("127.0.0.1", platform.broker)).unwrap();
    let failed = platform
        .stacks(&["apply", "--yes", "--target", "broker-1"])
        .code(3);
    let out = stdout(&failed);
    assert!(
        out.contains(&format!(
            "127.0.0.1:{} is already taken by another process: stop it, or change ports.broker_client in {}",
            platform.broker,
            file.display()
        )),
        "{out}"
    );
    let running: Vec<String> = marked_processes(&platform.name)
        .into_iter()
        .map(|(_, resource)| resource)
        .collect();
    assert!(
        !running.iter().any(|r| r.starts_with("broker")),
        "{running:?}"
    );
}

/// `cargo run -p stacks` tells the CLI about its own package (`CARGO_MANIFEST_DIR` …); a build
/// command that saw it would rebuild and relink the programs whenever the CLI is started the
/// other way, and every service would restart for nothing.
#[test]
fn the_local_build_runs_without_what_cargo_run_says_about_the_cli() {
    let platform = Platform::new("build", "http://127.0.0.1:9/", false);
    let file = platform.envs.path().join(format!("{}.toml", platform.name));
    let seen = platform.data.path().join("build-environment");
    let text = std::fs::read_to_string(&file).unwrap().replacen(
        "[local]\n",
        &format!("[local]\nbuild = \"env > {}\"\n", seen.display()),
        1,
    );
    std::fs::write(&file, text).unwrap();
    platform
        .command(&["preview"])
        .env("CARGO_MANIFEST_DIR", "/work/stacks")
        .env("CARGO_PKG_NAME", "stacks")
        .env("KEPT_FOR_THE_BUILD", "yes")
        .assert()
        .success();
    let environment = std::fs::read_to_string(&seen).unwrap();
    assert!(
        environment.contains("\nKEPT_FOR_THE_BUILD=yes\n"),
        "{environment}"
    );
    for gone in ["CARGO_MANIFEST_DIR=", "CARGO_PKG_NAME="] {
        assert!(!environment.contains(gone), "{gone} reached the build");
    }
}
