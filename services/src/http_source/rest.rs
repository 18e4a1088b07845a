//! The REST surface, in Kafka Connect's shape: `GET /connectors`,
//! `GET /connectors/{name}/status`, `GET /connectors/{name}/offsets`,
//! `PUT /connectors/{name}/pause|resume`, `POST /connectors/{name}/restart`, `GET /metrics`.
//! Errors are Connect's `{"error_code": <status>, "message": …}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;

use super::{Connector, Status};

#[derive(Clone)]
struct Worker {
    connector: Arc<Connector>,
    id: Arc<str>,
}

/// Connect's error responses.
#[derive(Debug)]
enum RestError {
    /// No connector of that name runs here.
    UnknownConnector(String),
    /// No such endpoint.
    NoEndpoint,
    /// The endpoint does not take this method.
    MethodNotAllowed,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            RestError::UnknownConnector(name) => {
                (StatusCode::NOT_FOUND, format!("Connector {name} not found"))
            }
            RestError::NoEndpoint => (StatusCode::NOT_FOUND, "no such endpoint".to_owned()),
            RestError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint".to_owned(),
            ),
        };
        (
            status,
            Json(json!({"error_code": status.as_u16(), "message": message})),
        )
            .into_response()
    }
}

/// The connector called `name`, or Connect's 404.
fn named<'a>(worker: &'a Worker, name: &str) -> Result<&'a Connector, RestError> {
    if worker.connector.name() == name {
        Ok(&worker.connector)
    } else {
        Err(RestError::UnknownConnector(name.to_owned()))
    }
}

fn state(status: &Status, worker_id: &str) -> serde_json::Value {
    let mut state = json!({"state": status.state, "worker_id": worker_id});
    if let Some(trace) = &status.trace {
        state["trace"] = json!(trace);
    }
    state
}

async fn connectors(State(worker): State<Worker>) -> Json<Vec<String>> {
    Json(vec![worker.connector.name().to_owned()])
}

async fn status(
    State(worker): State<Worker>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, RestError> {
    let connector = named(&worker, &name)?;
    let status = connector.status();
    let mut task = state(&status, &worker.id);
    task["id"] = json!(0);
    Ok(Json(json!({
        "name": connector.name(),
        "connector": state(&status, &worker.id),
        "tasks": [task],
        "type": "source",
    })))
}

async fn offsets(
    State(worker): State<Worker>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, RestError> {
    let connector = named(&worker, &name)?;
    let offsets: Vec<serde_json::Value> = connector
        .committed()
        .map(|stored| {
            json!({
                "partition": {"topic": connector.config().topic},
                "offset": stored,
            })
        })
        .into_iter()
        .collect();
    Ok(Json(json!({ "offsets": offsets })))
}

/// Applies `action` to the connector called `name` and answers `done`.
fn act(
    worker: &Worker,
    name: &str,
    action: fn(&Connector),
    done: StatusCode,
) -> Result<StatusCode, RestError> {
    action(named(worker, name)?);
    Ok(done)
}

async fn pause(
    State(worker): State<Worker>,
    Path(name): Path<String>,
) -> Result<StatusCode, RestError> {
    act(&worker, &name, Connector::pause, StatusCode::ACCEPTED)
}

async fn resume(
    State(worker): State<Worker>,
    Path(name): Path<String>,
) -> Result<StatusCode, RestError> {
    act(&worker, &name, Connector::resume, StatusCode::ACCEPTED)
}

async fn restart(
    State(worker): State<Worker>,
    Path(name): Path<String>,
) -> Result<StatusCode, RestError> {
    act(&worker, &name, Connector::restart, StatusCode::NO_CONTENT)
}

async fn metrics(State(worker): State<Worker>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        worker.connector.metrics_text(),
    )
        .into_response()
}

async fn not_found() -> RestError {
    RestError::NoEndpoint
}

async fn method_not_allowed() -> RestError {
    RestError::MethodNotAllowed
}

/// The REST API of a worker running `connector`; `worker_id` is its `host:port`.
pub fn router(connector: Arc<Connector>, worker_id: &str) -> Router {
    Router::new()
        .route("/connectors", get(connectors))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/offsets", get(offsets))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/restart", post(restart))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Worker {
            connector,
            id: Arc::from(worker_id),
        })
}
