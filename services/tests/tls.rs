//! TLS from the admin API and the connector to the brokers, with certificates the graph
//! generated (the `iac-tls` provider through the engine: a CA, a broker certificate for
//! `localhost` and 127.0.0.1, another CA, and a certificate for another name), presented by
//! Apache Kafka's own SSL listener (a PEM keystore): every byte the API and the connector
//! exchange with Kafka goes through a real TLS handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/processes.rs"]
mod processes;

#[path = "support/kafka.rs"]
mod kafka;

#[path = "support/pki.rs"]
mod pki;

use pki::{Pki, generate};
use serde_json::json;

use processes::{Running, ready, wait_ready};

/// A broker whose TLS listener presents `cert`, advertised as `localhost`: the node and its
/// folder.
fn tls_broker(pki: &Pki, cert: &str) -> (kafka::Kafka, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let broker = kafka::Node {
        tls: Some((
            pki.get(&format!("{cert}.key")),
            pki.get(&format!("{cert}.crt")),
        )),
        host: "localhost",
        ..Default::default()
    }
    .start(dir.path());
    (broker, dir)
}

fn admin_api(bootstrap: &str, ca: Option<&std::path::Path>) -> (Running, u16) {
    match ca {
        Some(ca) => processes::admin_api(
            bootstrap,
            &[
                "--kafka-security-protocol",
                "ssl",
                "--kafka-ssl-ca-location",
                &ca.display().to_string(),
            ],
            &[],
        ),
        None => processes::admin_api(bootstrap, &[], &[]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_trusts_only_the_generated_ca_and_the_name_it_signed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = generate(dir.path()).await;
    for name in ["ca", "other-ca"] {
        std::fs::write(
            dir.path().join(format!("{name}.crt")),
            pki.get(&format!("{name}.crt")),
        )
        .unwrap();
    }
    let ca = dir.path().join("ca.crt");
    let other_ca = dir.path().join("other-ca.crt");
    let client = reqwest::Client::new();

    let (broker, _broker_dir) = tls_broker(&pki, "broker");
    let (wrong_broker, _wrong_dir) = tls_broker(&pki, "wrong-name");
    let (bootstrap, wrong_bootstrap) = (broker.bootstrap.clone(), wrong_broker.bootstrap.clone());
    let (_api, api) = admin_api(&bootstrap, Some(&ca));
    let (_distrusting, distrusting) = admin_api(&bootstrap, Some(&other_ca));
    let (_misnamed, misnamed) = admin_api(&wrong_bootstrap, Some(&ca));
    let (_plain, plain) = admin_api(&bootstrap, None);

    wait_ready(&client, api, "the admin API trusting the CA").await;
    let created = client
        .post(format!("http://127.0.0.1:{api}/topics"))
        .json(&json!({"name": "tls-orders", "partitions": 1, "replication_factor": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201, "over TLS, end to end");
    let topics = client
        .get(format!("http://127.0.0.1:{api}/topics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(topics.contains("\"tls-orders\""), "{topics}");

    // The connector polls the API's topics into a topic over TLS, trusting the CA; a reader
    // of the test's own, over TLS too, finds them.
    let ca_location = ca.display().to_string();
    let tls = [
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "ssl"),
        ("ssl.ca.location", ca_location.as_str()),
    ];
    let (_connector, connector) = processes::connector_polling_topics(
        dir.path(),
        ("tls-topics", "tls.topics"),
        api,
        &tls,
        &[],
    );
    processes::wait_for_key(&tls, "tls.topics", "tls-orders").await;
    assert_eq!(
        processes::connector_state(&client, connector, "tls-topics").await,
        "RUNNING"
    );

    assert_eq!(
        ready(&client, distrusting).await,
        503,
        "a client trusting another CA is refused"
    );
    assert_eq!(
        ready(&client, misnamed).await,
        503,
        "a certificate for another name is refused"
    );
    assert_eq!(
        ready(&client, plain).await,
        503,
        "plain text to a TLS listener gets nowhere"
    );
}
