//! Processes the security tests start: admin APIs and connectors on free ports (beside the
//! Kafka nodes of `kafka.rs`), each killed when the test ends, however it ends; and a consumer of their own that
//! reads what the connector wrote.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) use super::kafka::free_port;

/// A child process killed when the test ends.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts connections on `port`.
pub(crate) fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One of the project's services, quiet, with only the SASL password `env` gives it.
fn service(mut command: Command, env: &[(&str, &str)]) -> Running {
    let child = command
        .env_remove("KAFKA_SASL_PASSWORD")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

/// The admin API for `bootstrap` with `args` and `env` added: the process and its port.
pub(crate) fn admin_api(bootstrap: &str, args: &[&str], env: &[(&str, &str)]) -> (Running, u16) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-admin-api"));
    command
        .args(["--bootstrap-servers", bootstrap])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--kafka-timeout", "2s"])
        .args(args);
    let running = service(command, env);
    wait_listening(port, "the admin API");
    (running, port)
}

/// The status of the admin API's `/ready` (0: no answer).
pub(crate) async fn ready(client: &reqwest::Client, port: u16) -> u16 {
    client
        .get(format!("http://127.0.0.1:{port}/ready"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Waits until the admin API on `port` is ready.
pub(crate) async fn wait_ready(client: &reqwest::Client, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(client, port).await != 200 {
        assert!(Instant::now() < deadline, "{what} never got ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The connector polling the admin API on `api`'s `/topics` into `topic` (keyed by topic
/// name), with `producer` as its `producer.*` settings and `env` added: the process and the
/// port of its REST API.
pub(crate) fn connector_polling_topics(
    dir: &Path,
    (name, topic): (&str, &str),
    api: u16,
    producer: &[(&str, &str)],
    env: &[(&str, &str)],
) -> (Running, u16) {
    let port = free_port();
    let mut config = serde_json::json!({
        "http.request.url": format!("http://127.0.0.1:{api}/topics"),
        "http.timer.interval.millis": "500",
        "http.response.list.pointer": "/topics",
        "http.response.record.key.pointer": "/name",
        "kafka.topic": topic,
        "offset.storage.topic": format!("{name}-offsets"),
        "topic.creation.default.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "listeners": format!("http://127.0.0.1:{port}")
    });
    for (key, value) in producer {
        config[format!("producer.{key}")] = serde_json::json!(value);
    }
    let file = dir.join(format!("{name}.json"));
    std::fs::write(
        &file,
        serde_json::json!({"name": name, "config": config}).to_string(),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_http-source-connector"));
    command.arg(&file);
    (service(command, env), port)
}

/// Reads `topic` from the start with a consumer of the test's own (`settings` added) until a
/// record keyed `key` arrives, for at most a minute. The consumer blocks, so it runs off the
/// runtime: a worker it blocked could strand the tasks it holds (the TLS front's, say).
pub(crate) async fn wait_for_key(settings: &[(&str, &str)], topic: &str, key: &str) {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (topic, key) = (topic.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || read_until_key(&settings, &topic, &key))
        .await
        .unwrap();
}

fn read_until_key(settings: &[(String, String)], topic: &str, key: &str) {
    use rdkafka::Message as _;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let mut config = rdkafka::config::ClientConfig::new();
    config
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        // The topic may be made after the reader subscribes: look for it every second, not
        // every five minutes (librdkafka's default).
        .set("topic.metadata.refresh.interval.ms", "1000");
    for (k, v) in settings {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut keys = Vec::new();
    while !keys.iter().any(|k| k == key) {
        assert!(
            Instant::now() < deadline,
            "{key} never reached {topic}: {keys:?}"
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500))
            && let Some(found) = message.key()
        {
            keys.push(String::from_utf8_lossy(found).into_owned());
        }
    }
}

/// The state of the connector `name` whose REST API is on `port`.
pub(crate) async fn connector_state(client: &reqwest::Client, port: u16, name: &str) -> String {
    let status: serde_json::Value = client
        .get(format!("http://127.0.0.1:{port}/connectors/{name}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["connector"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
