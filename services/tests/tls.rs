//! TLS from the admin API to the brokers, with certificates the graph generated (the
//! `iac-tls` provider through the engine: a CA, a broker certificate for `localhost` and
//! 127.0.0.1, another CA, and a certificate for another name). tansu 0.6.0 cannot terminate
//! TLS (it builds an acceptor and never uses it), so a TLS terminator of this test
//! (`rustls`) stands before each broker and the broker advertises the terminator's address:
//! every byte the API exchanges with Kafka goes through a real TLS handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iac_core::{ApplyOptions, Engine, FileBackend, Passphrase, Providers, Stack};
use iac_tls::{Certificate, CertificateArgs, PrivateKey, PrivateKeyArgs, TlsProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// A tansu that advertises `localhost:<advertised>` (the terminator before it).
fn tansu(port: u16, advertised: u16) -> Running {
    let program = std::env::var("KAFKA_PLATFORM_TANSU").expect(
        "KAFKA_PLATFORM_TANSU is unset: scripts/setup.sh builds the broker (run scripts/test.sh)",
    );
    let child = Command::new(program)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
        ])
        .args([
            "--advertised-listener-url",
            &format!("tcp://localhost:{advertised}"),
        ])
        .args(["--storage-engine", "memory://tansu/", "--silent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running(child)
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
    (tansu(upstream, front), format!("localhost:{front}"))
}

fn admin_api(bootstrap: &str, ca: Option<&std::path::Path>) -> (Running, u16) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-admin-api"));
    command
        .args(["--bootstrap-servers", bootstrap])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--kafka-timeout", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(ca) = ca {
        command
            .args(["--kafka-security-protocol", "ssl"])
            .arg("--kafka-ssl-ca-location")
            .arg(ca);
    }
    let child = Running(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the admin API did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

async fn ready(client: &reqwest::Client, port: u16) -> u16 {
    client
        .get(format!("http://127.0.0.1:{port}/ready"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
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

    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&client, api).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the admin API trusting the CA never got ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
