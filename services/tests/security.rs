//! SASL/SCRAM-SHA-512 end to end against a real broker that requires authentication: tansu
//! on its SQLite storage, with a user made by `tansu user create` before authentication is
//! switched on (once it is on, tansu refuses an unauthenticated user change, and its memory
//! storage forgets users at a restart). The admin API and the connector work with the user's
//! password and are refused without it or with a wrong one.
//!
//! TLS is not tested against tansu: 0.6.0 parses `--cert` and `--key` but never uses the
//! acceptor it builds from them (`tansu-broker` `broker.rs`, `let _acceptor`), so its listener
//! is plain TCP whatever the flags say.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/processes.rs"]
mod processes;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use processes::{Running, free_port, ready, wait_ready};

use serde_json::json;

const USER: &str = "platform";
const PASSWORD: &str = "scram-password-of-the-test";

fn tansu(dir: &Path, port: u16, authentication: bool) -> Running {
    let url = format!("tcp://127.0.0.1:{port}");
    let extra: &[&str] = if authentication {
        &["--authentication"]
    } else {
        &[]
    };
    processes::tansu(dir, port, &url, "sqlite://tansu.db", extra)
}

/// A broker on `port` that requires SCRAM, knowing `USER` with `PASSWORD`.
fn authenticating_broker(dir: &Path, port: u16) -> Running {
    {
        let _open = tansu(dir, port, false);
        let made = Command::new(processes::tansu_program())
            .current_dir(dir)
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{port}"),
            ])
            .args(["--mechanism", "scram512", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "tansu user create: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    // The first broker is gone (killed, not left serving): its port is free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the first broker kept {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    tansu(dir, port, true)
}

fn admin_api(broker: u16, password: Option<&str>) -> (Running, u16) {
    let bootstrap = format!("127.0.0.1:{broker}");
    match password {
        Some(password) => processes::admin_api(
            &bootstrap,
            &[
                "--kafka-security-protocol",
                "sasl_plaintext",
                "--kafka-sasl-username",
                USER,
            ],
            &[("KAFKA_SASL_PASSWORD", password)],
        ),
        None => processes::admin_api(&bootstrap, &[], &[]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_reach_a_broker_that_requires_them_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let _broker = authenticating_broker(dir.path(), broker);
    let client = reqwest::Client::new();

    let (_api, api) = admin_api(broker, Some(PASSWORD));
    let (_wrong, wrong) = admin_api(broker, Some("not-the-password-at-all"));
    let (_anonymous, anonymous) = admin_api(broker, None);
    wait_ready(&client, api, "the admin API with the password").await;
    assert_eq!(
        ready(&client, wrong).await,
        503,
        "a wrong password is refused"
    );
    assert_eq!(
        ready(&client, anonymous).await,
        503,
        "no authentication is refused"
    );

    let created = client
        .post(format!("http://127.0.0.1:{api}/topics"))
        .json(&json!({"name": "secured-orders", "partitions": 1, "replication_factor": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    // The connector polls the admin API's topics into a topic, as the platform does, and
    // takes its password from the environment variable its file names.
    let broker_address = format!("127.0.0.1:{broker}");
    let sasl = [
        ("bootstrap.servers", broker_address.as_str()),
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", USER),
    ];
    let (_connector, connector_port) = processes::connector_polling_topics(
        dir.path(),
        ("secured-topics", "secured.topics"),
        api,
        &[
            &sasl[..],
            &[("sasl.password.env", "SECURED_CONNECTOR_PASSWORD")],
        ]
        .concat(),
        &[("SECURED_CONNECTOR_PASSWORD", PASSWORD)],
    );
    processes::wait_for_key(
        &[&sasl[..], &[("sasl.password", PASSWORD)]].concat(),
        "secured.topics",
        "secured-orders",
    )
    .await;
    assert_eq!(
        processes::connector_state(&client, connector_port, "secured-topics").await,
        "RUNNING"
    );
}
