//! The Kafka admin REST API: topics, brokers, consumer groups and their lag over HTTP, with
//! one JSON error shape, optional bearer-token auth on every mutating endpoint, Prometheus
//! metrics and an OpenAPI document generated from the handlers themselves.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use clap::Parser;
//! let args = services::admin_api::Args::parse_from(["kafka-admin-api", "--bootstrap-servers", "127.0.0.1:9092"]);
//! let app = services::admin_api::router(services::admin_api::AppState::new(&args)?);
//! let listener = tokio::net::TcpListener::bind(args.listen).await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod error;
mod ffi;
pub mod handlers;
pub mod health;
pub mod kafka;
mod metrics;
pub mod validate;

pub use error::{ApiError, ErrorCode};
pub use kafka::Cluster;
pub use metrics::Metrics;

/// Configuration, from flags or the environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "kafka-admin-api", version, about = "The Kafka admin REST API")]
pub struct Args {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Address to listen on.
    #[arg(long, env = "ADMIN_API_LISTEN", default_value = "0.0.0.0:2020")]
    pub listen: SocketAddr,
    /// Bearer token every mutating request must carry (unset: no auth).
    #[arg(long, env = "ADMIN_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// How long one broker call may take before the API answers 503.
    #[arg(long, env = "ADMIN_API_KAFKA_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub kafka_timeout: Duration,
    /// How long a whole request may take before the API answers 503.
    #[arg(long, env = "ADMIN_API_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// How long a metadata snapshot is reused by reads (0s: every read asks the broker).
    /// This API's own changes are seen at once.
    #[arg(long, env = "ADMIN_API_METADATA_MAX_AGE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub metadata_max_age: Duration,
    /// The most partitions `POST /topics` creates in one topic (the OpenAPI document says so).
    #[arg(long, env = "ADMIN_API_MAX_PARTITIONS", default_value_t = 10_000, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_partitions: i32,
    /// How the API reaches the brokers (TLS, SASL).
    #[command(flatten)]
    pub kafka_security: crate::kafka_security::KafkaSecurity,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The bearer token of mutating requests.
    pub token: Option<Arc<str>>,
    /// Request timeout.
    pub request_timeout: Duration,
    /// The most partitions of a new topic.
    pub max_partitions: i32,
    /// The API's metrics.
    pub metrics: Arc<Metrics>,
}

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// `--token` / `ADMIN_API_TOKEN` is empty.
    #[error("ADMIN_API_TOKEN is set but empty: set a token, or unset it to run without auth")]
    EmptyToken,
    /// The Kafka security flags do not fit together.
    #[error("{0}")]
    KafkaSecurity(String),
    /// librdkafka refused the client configuration.
    #[error("cannot create the Kafka client for {bootstrap}: {reason}")]
    KafkaClient {
        /// `--bootstrap-servers`.
        bootstrap: String,
        /// What librdkafka said.
        reason: String,
    },
}

impl AppState {
    /// State for `args` (no connection is made yet).
    pub fn new(args: &Args) -> Result<Self, StartupError> {
        let token = match args.token.as_deref() {
            Some("") => return Err(StartupError::EmptyToken),
            token => token.map(Arc::from),
        };
        let security = args
            .kafka_security
            .settings()
            .map_err(StartupError::KafkaSecurity)?;
        Ok(Self {
            cluster: Arc::new(Cluster::new(
                &args.bootstrap_servers,
                &security,
                args.kafka_timeout,
                args.metadata_max_age,
            )?),
            token,
            request_timeout: args.request_timeout,
            max_partitions: args.max_partitions,
            metrics: Arc::new(Metrics::default()),
        })
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kafka-admin-api", description = "Kafka admin REST API: topics, brokers, consumer groups. Errors are `{error_code, message}`."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::ready))
        .routes(routes!(handlers::cluster_health))
        .routes(routes!(handlers::brokers))
        .routes(routes!(handlers::list_topics, handlers::create_topic))
        .routes(routes!(
            handlers::get_topic,
            handlers::update_topic,
            handlers::delete_topic
        ))
        .routes(routes!(handlers::list_groups))
        .routes(routes!(handlers::get_group))
        .routes(routes!(handlers::metrics))
}

/// The OpenAPI document of every endpoint (served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// Constant-time equality, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if let (true, Some(token)) = (mutating, state.token.as_deref()) {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        match given {
            None => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "this endpoint changes the cluster: send `Authorization: Bearer <token>`",
                )
                .into_response();
            }
            Some(given) if !same(given.as_bytes(), token.as_bytes()) => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    "the token is not valid",
                )
                .into_response();
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout,
            format!("the request took longer than {:?}", state.request_timeout),
        )
        .into_response(),
    };
    let labels = metrics::RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics.observe(&labels, started.elapsed());
    response
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see /openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; see /openapi.json",
    )
}

/// Sets the document's most partitions of a new topic to the server's.
fn limit_partitions(spec: &mut utoipa::openapi::OpenApi, max: i32) {
    use utoipa::Number;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let Some(RefOr::T(Schema::Object(request))) = spec
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewTopicRequest"))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(partitions))) = request.properties.get_mut("partitions") {
        partitions.maximum = Some(Number::Int(max as isize));
    }
}

/// Removes the bearer scheme and every operation's requirement of it.
fn without_auth(spec: &mut utoipa::openapi::OpenApi) {
    for item in spec.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation.security = None;
            operation.responses.responses.remove("401");
            operation.responses.responses.remove("403");
        }
    }
    if let Some(components) = spec.components.as_mut() {
        components.security_schemes.remove("bearer");
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let (router, mut spec) = routes().split_for_parts();
    if state.token.is_none() {
        // Without a token nothing asks for one: the document says so.
        without_auth(&mut spec);
    }
    limit_partitions(&mut spec, state.max_partitions);
    let spec = Arc::new(spec);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = Arc::clone(&spec);
                async move { axum::Json(spec.as_ref().clone()) }
            }),
        )
        // Routing before auth: an unknown path is a 404 and a wrong method a 405 for anyone.
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
