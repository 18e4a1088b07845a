//! `http-source-connector`: runs one connector from its configuration file and serves its
//! REST API until SIGTERM or Ctrl-C; then stops polling and commits what was produced.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use services::http_source::{self, Connector, ConnectorConfig};
use services::process;

/// Polls a REST API into a Kafka topic.
#[derive(Debug, Parser)]
#[command(name = "http-source-connector", version)]
struct Args {
    /// The connector's configuration (`.json`, or `.toml`), Kafka Connect's shape.
    #[arg(env = "HTTP_SOURCE_CONFIG")]
    config: PathBuf,
    /// Address of the REST API (default: the file's `listeners`, else 0.0.0.0:8084).
    #[arg(long, env = "HTTP_SOURCE_LISTEN")]
    listen: Option<SocketAddr>,
    /// How long one broker call may take at start before it is retried.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    kafka_timeout: Duration,
    /// How long to wait at shutdown for produced records to be committed. What is not
    /// committed by then is produced again after a restart, never lost.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
}

/// The REST address: the flag, else the file's `listeners` (`http://host:port`).
fn listen_address(args: &Args, config: &ConnectorConfig) -> Result<SocketAddr, String> {
    if let Some(listen) = args.listen {
        return Ok(listen);
    }
    match &config.listener {
        None => Ok(SocketAddr::from(([0, 0, 0, 0], 8084))),
        Some(listener) => listener
            .strip_prefix("http://")
            .and_then(|address| address.trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("config.listeners: `{listener}` is not http://<ip>:<port>")),
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let shown = args.config.display().to_string();
    let config = ConnectorConfig::load(&args.config).map_err(|e| match e {
        http_source::ConfigError::Key { .. } => format!("{shown}: {e}"),
        other => other.to_string(),
    })?;
    let listen = listen_address(&args, &config).map_err(|e| format!("{shown}: {e}"))?;
    let connector =
        Connector::new(config, args.kafka_timeout).map_err(|e| format!("{shown}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let worker_id = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    tracing::info!(connector = connector.name(), listen = %worker_id, topic = %connector.config().topic, "http-source-connector ready");
    let running = tokio::spawn(std::sync::Arc::clone(&connector).run());
    let api = http_source::router(std::sync::Arc::clone(&connector), &worker_id);
    let stopping = std::sync::Arc::clone(&connector);
    axum::serve(listener, api)
        .with_graceful_shutdown(async move {
            process::shutdown_signal().await;
            tracing::info!("shutting down: committing what was produced");
            stopping.stop();
        })
        .await
        .map_err(|e| format!("serving: {e}"))?;
    connector.stop();
    match tokio::time::timeout(args.shutdown_timeout, running).await {
        Ok(_) => tracing::info!("stopped"),
        Err(_) => tracing::warn!(
            "records still uncommitted after {}: they are produced again after a restart",
            humantime::format_duration(args.shutdown_timeout)
        ),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    process::init_logging();
    let args = Args::parse();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
