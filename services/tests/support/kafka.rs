//! An Apache Kafka node a test starts for itself (combined mode: KRaft controller and broker in
//! one JVM) on free ports of 127.0.0.1, killed when the test ends, however it ends. Its client
//! listener speaks what the test asks for — plain, SASL/SCRAM-SHA-512, TLS or both — with the
//! SCRAM users made when its storage is formatted (`StorageTool format --add-scram`), as the
//! platform does; brokers and the controller talk over listeners of their own.
//!
//! Kafka comes from scripts/setup.sh: `KAFKA_PLATFORM_KAFKA_HOME` (its jars and logging
//! configuration) and `KAFKA_PLATFORM_JAVA`.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A node to start: its client listener and who may use it.
pub(crate) struct Node<'a> {
    /// SCRAM-SHA-512 users (name, password), made at format time: with any, the client
    /// listener requires SASL/SCRAM.
    pub(crate) users: &'a [(&'a str, &'a str)],
    /// The PEM private key (PKCS#8) and certificate the client listener presents: with them,
    /// it speaks TLS.
    pub(crate) tls: Option<(&'a str, &'a str)>,
    /// The host name clients are told to come back to (`127.0.0.1`, or `localhost` where a
    /// certificate names it).
    pub(crate) host: &'a str,
    /// The client port (a free one when `None`).
    pub(crate) port: Option<u16>,
}

impl Default for Node<'_> {
    fn default() -> Self {
        Self {
            users: &[],
            tls: None,
            host: "127.0.0.1",
            port: None,
        }
    }
}

/// A running node, killed when dropped: the address clients bootstrap from.
pub(crate) struct Kafka {
    process: Child,
    pub(crate) bootstrap: String,
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: scripts/setup.sh installs Kafka and exports it (run scripts/test.sh, or `KAFKA_PLATFORM_KAFKA=1 source scripts/setup.sh`)")
    })
}

/// `java` with the heap, classpath and logging of a small node, working in `dir`.
fn java(dir: &Path) -> Command {
    let home = PathBuf::from(env("KAFKA_PLATFORM_KAFKA_HOME"));
    let mut command = Command::new(env("KAFKA_PLATFORM_JAVA"));
    command
        .current_dir(dir)
        .args([
            "-Xms256m",
            "-Xmx256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
        ])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            home.join("config/log4j2.yaml").display()
        ))
        .arg(format!("-Dkafka.logs.dir={}", dir.display()))
        .arg("-cp")
        .arg(home.join("libs/*"));
    command
}

impl Node<'_> {
    /// Writes the node's files into `dir`, formats its storage and starts it; returns once
    /// its client port accepts connections.
    pub(crate) fn start(&self, dir: &Path) -> Kafka {
        let port = self.port.unwrap_or_else(free_port);
        let (internal, controller) = (free_port(), free_port());
        let protocol = match (self.users.is_empty(), self.tls.is_some()) {
            (true, false) => "PLAINTEXT",
            (false, false) => "SASL_PLAINTEXT",
            (true, true) => "SSL",
            (false, true) => "SASL_SSL",
        };
        let mut properties = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=CLIENT://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=CLIENT://{host}:{port},INTERNAL://127.0.0.1:{internal}\n\
             listener.security.protocol.map=CLIENT:{protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=INTERNAL\n\
             log.dirs={data}\n\
             num.partitions=1\n\
             default.replication.factor=1\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=3\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             group.initial.rebalance.delay.ms=0\n\
             num.network.threads=1\n\
             num.io.threads=2\n",
            host = self.host,
            data = dir.join("data").display(),
        );
        if !self.users.is_empty() {
            properties.push_str(
                "sasl.enabled.mechanisms=SCRAM-SHA-512\n\
                 listener.name.client.scram-sha-512.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;\n",
            );
        }
        if let Some((key, cert)) = self.tls {
            let keystore = dir.join("keystore.pem");
            std::fs::write(&keystore, format!("{key}\n{cert}\n")).unwrap();
            writeln!(
                properties,
                "listener.name.client.ssl.keystore.type=PEM\n\
                 listener.name.client.ssl.keystore.location={}",
                keystore.display()
            )
            .unwrap();
        }
        let file = dir.join("server.properties");
        std::fs::write(&file, properties).unwrap();

        let mut format = java(dir);
        format.args([
            "kafka.tools.StorageTool",
            "format",
            "-t",
            "MkU3OEVBNTcwNTJENDM2Qk",
            "-c",
        ]);
        format.arg(&file);
        for (user, password) in self.users {
            format.args([
                "--add-scram",
                &format!("SCRAM-SHA-512=[name={user},password={password}]"),
            ]);
        }
        let formatted = format.output().unwrap();
        assert!(
            formatted.status.success(),
            "formatting the test node's storage failed: {}{}",
            String::from_utf8_lossy(&formatted.stdout),
            String::from_utf8_lossy(&formatted.stderr)
        );

        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = java(dir)
            .arg("kafka.Kafka")
            .arg(&file)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Kafka {
            process: child,
            bootstrap: format!("{}:{port}", self.host),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = node.process.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the test node did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        node
    }
}
