//! TLS from the admin API to the brokers, with certificates the graph generated (the
//! `iac-tls` provider through the engine: a CA, a broker certificate for `localhost` and
//! 127.0.0.1, another CA, and a certificate for another name). tansu 0.6.0 cannot terminate
//! TLS (it builds an acceptor and never uses it), so a TLS terminator of this test
//! (`rustls`) stands before each broker and the broker advertises the terminator's address:
//! every byte the API exchanges with Kafka goes through a real TLS handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/processes.rs"]
mod processes;

use std::sync::Arc;

use iac_core::{ApplyOptions, Engine, FileBackend, Passphrase, Providers, Stack};
use iac_tls::{Certificate, CertificateArgs, PrivateKey, PrivateKeyArgs, TlsProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use processes::{Running, free_port, ready, wait_ready};

/// The PEMs the graph generated, by name: `<name>.key` and `<name>.crt`.
struct Pki {
    pems: std::collections::BTreeMap<String, String>,
}

impl Pki {
    fn get(&self, name: &str) -> &str {
        &self.pems[name]
    }
}

/// Applies a stack of two CAs, a broker certificate for `localhost`/127.0.0.1 signed by the
/// first, and one for another name signed by it too.
async fn generate(dir: &std::path::Path) -> Pki {
    let mut s = Stack::new("tls-test");
    let mut cas = Vec::new();
    for ca in ["ca", "other-ca"] {
        let key = s.resource::<PrivateKey>(&format!("{ca}-key"), PrivateKeyArgs::default());
        let cert = s.resource::<Certificate>(
            ca,
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: format!("{ca} of the TLS test").into(),
                is_ca: Some(true).into(),
                validity_days: 30.into(),
                ..Default::default()
            },
        );
        cas.push((key, cert));
    }
    let (ca_key, ca) = &cas[0];
    for (name, dns, ip) in [
        ("broker", "localhost", Some("127.0.0.1")),
        ("wrong-name", "kafka.example.com", None),
    ] {
        let key = s.resource::<PrivateKey>(&format!("{name}-key"), PrivateKeyArgs::default());
        s.resource::<Certificate>(
            name,
            CertificateArgs {
                private_key_pem: key.private_key_pem(),
                common_name: dns.into(),
                dns_names: vec![dns].into(),
                ip_addresses: ip.map(|i| vec![i.to_owned()]).unwrap_or_default().into(),
                validity_days: 30.into(),
                ca_private_key_pem: ca_key.private_key_pem().map(Some),
                ca_cert_pem: ca.cert_pem().map(Some),
                ..Default::default()
            },
        );
    }
    let program = s.build().unwrap();
    let mut providers = Providers::new();
    TlsProvider::new().register(&mut providers);
    let engine = Engine::new(providers, FileBackend::new(dir.join("state")))
        .with_passphrase(Passphrase::new("tls test"));
    let plan = engine.preview(&program).await.unwrap();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{:?}", summary.failed);
    let state = engine.state("tls-test").await.unwrap().unwrap();
    let mut pems = std::collections::BTreeMap::new();
    for name in ["ca", "other-ca", "broker", "wrong-name"] {
        let output = |resource: &str, key: &str| {
            state.resource(resource).unwrap().outputs[key]
                .as_str()
                .unwrap()
                .to_owned()
        };
        pems.insert(format!("{name}.crt"), output(name, "cert_pem"));
        pems.insert(
            format!("{name}.key"),
            output(&format!("{name}-key"), "private_key_pem"),
        );
    }
    Pki { pems }
}

/// A TLS terminator on a free port presenting `cert`/`key`, forwarding to `upstream`.
async fn terminator(cert: &str, key: &str, upstream: u16) -> u16 {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            });
        }
    });
    port
}

/// A broker behind a terminator presenting `cert`: the bootstrap address.
async fn tls_broker(pki: &Pki, cert: &str) -> (Running, String) {
    let upstream = free_port();
    let front = terminator(
        pki.get(&format!("{cert}.crt")),
        pki.get(&format!("{cert}.key")),
        upstream,
    )
    .await;
    let dir = std::env::temp_dir();
    let broker = processes::tansu(
        &dir,
        upstream,
        &format!("tcp://localhost:{front}"),
        "memory://tansu/",
        &[],
    );
    (broker, format!("localhost:{front}"))
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

    let (_broker, bootstrap) = tls_broker(&pki, "broker").await;
    let (_wrong_broker, wrong_bootstrap) = tls_broker(&pki, "wrong-name").await;
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
