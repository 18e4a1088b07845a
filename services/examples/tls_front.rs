//! A TLS front before a plain-TCP broker, for the admin API's benchmark over TLS
//! (`scripts/bench-admin-api.sh`): generates a CA and a certificate for `localhost` and
//! 127.0.0.1 with the `iac-tls` provider (state in `<dir>`), writes `<dir>/ca.crt`, prints
//! the port it presents the certificate on, then forwards every connection to the broker on
//! 127.0.0.1:`<upstream port>` until it is killed.
//!
//! ```sh
//! tls_front <dir> <upstream port>
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a failure stops it

#[path = "../tests/support/tls_front.rs"]
mod tls_front;

use std::io::Write as _;
use std::path::PathBuf;

const USAGE: &str = "usage: tls_front <dir> <upstream port>";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect(USAGE));
    let upstream: u16 = args.next().and_then(|p| p.parse().ok()).expect(USAGE);
    let pki = tls_front::generate(&dir).await;
    std::fs::write(dir.join("ca.crt"), pki.get("ca.crt")).expect("cannot write ca.crt");
    let port = tls_front::terminator(pki.get("broker.crt"), pki.get("broker.key"), upstream).await;
    println!("{port}");
    std::io::stdout().flush().expect("cannot print the port");
    std::future::pending::<()>().await;
}
