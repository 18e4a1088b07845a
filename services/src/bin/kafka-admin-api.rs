//! `kafka-admin-api`: serves the admin REST API until SIGTERM or Ctrl-C, then finishes the
//! requests in flight.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

use anyhow::Context;
use clap::Parser;
use services::admin_api::{self, AppState, Args};
use services::process;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let args = Args::parse();
    let state = AppState::new(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, bootstrap = %args.bootstrap_servers, auth = args.token.is_some(), "kafka-admin-api ready");
    axum::serve(listener, admin_api::router(state))
        .with_graceful_shutdown(async {
            process::shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await
        .context("serving")?;
    Ok(())
}
