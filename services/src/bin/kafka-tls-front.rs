//! `kafka-tls-front`: terminates TLS before a plain-TCP Kafka broker until SIGTERM or Ctrl-C
//! ([`services::tls_front`]).

use anyhow::Context;
use clap::Parser;
use services::{process, tls_front};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let args = tls_front::Args::parse();
    let acceptor = tls_front::acceptor(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, upstream = %args.upstream, "kafka-tls-front ready");
    tokio::select! {
        () = tls_front::serve(listener, acceptor, args.upstream) => {}
        () = process::shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}
