//! SASL/SCRAM-SHA-512 end to end against a real broker that requires authentication: Apache
//! Kafka with a SASL_PLAINTEXT client listener, its user made when its storage was formatted.
//! The admin API and the connector work with the user's password and are refused without it
//! or with a wrong one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/processes.rs"]
mod processes;

#[path = "support/kafka.rs"]
mod kafka;

use processes::{Running, ready, wait_ready};

use serde_json::json;

const USER: &str = "platform";
const PASSWORD: &str = "scram-password-of-the-test";

fn admin_api(bootstrap: &str, password: Option<&str>) -> (Running, u16) {
    match password {
        Some(password) => processes::admin_api(
            bootstrap,
            &[
                "--kafka-security-protocol",
                "sasl_plaintext",
                "--kafka-sasl-username",
                USER,
            ],
            &[("KAFKA_SASL_PASSWORD", password)],
        ),
        None => processes::admin_api(bootstrap, &[], &[]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_reach_a_broker_that_requires_them_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = kafka::Node {
        users: &[(USER, PASSWORD)],
        ..Default::default()
    }
    .start(dir.path());
    let client = reqwest::Client::new();

    let (_api, api) = admin_api(&broker.bootstrap, Some(PASSWORD));
    let (_wrong, wrong) = admin_api(&broker.bootstrap, Some("not-the-password-at-all"));
    let (_anonymous, anonymous) = admin_api(&broker.bootstrap, None);
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
    let sasl = [
        ("bootstrap.servers", broker.bootstrap.as_str()),
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
