//! The API's one error type: every failure is JSON `{error_code, message}` with a status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

/// The stable, machine-readable code of an error answer (`error_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `broker_error`.
    BrokerError,
    /// `broker_unavailable`.
    BrokerUnavailable,
    /// `forbidden`.
    Forbidden,
    /// `group_not_found`.
    GroupNotFound,
    /// `insufficient_brokers`.
    InsufficientBrokers,
    /// `internal`.
    Internal,
    /// `invalid_body`.
    InvalidBody,
    /// `invalid_config`.
    InvalidConfig,
    /// `invalid_partitions`.
    InvalidPartitions,
    /// `invalid_path`.
    InvalidPath,
    /// `invalid_query`.
    InvalidQuery,
    /// `invalid_replication_factor`.
    InvalidReplicationFactor,
    /// `invalid_topic_name`.
    InvalidTopicName,
    /// `malformed_json`.
    MalformedJson,
    /// `method_not_allowed`.
    MethodNotAllowed,
    /// `not_found`.
    NotFound,
    /// `timeout`.
    Timeout,
    /// `topic_exists`.
    TopicExists,
    /// `topic_not_found`.
    TopicNotFound,
    /// `unauthorized`.
    Unauthorized,
    /// `unknown_config`.
    UnknownConfig,
    /// `unsupported_media_type`.
    UnsupportedMediaType,
}

/// An error answer: the status and a stable, machine-readable code with a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code.
    pub error_code: ErrorCode,
    /// Explanation.
    pub message: String,
}

/// The code as the JSON body gives it (`topic_not_found`).
impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(code)) => f.write_str(&code),
            _ => Err(std::fmt::Error),
        }
    }
}

impl ApiError {
    /// An error with `status` and `code`.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503: the broker did not answer in time.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BrokerUnavailable,
            message,
        )
    }

    /// 500: a failure that is neither the caller's nor the broker's availability.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            message,
        )
    }
}

/// Where a Kafka error becomes an HTTP status: unavailability is 503, the caller's mistakes
/// 4xx, anything else the broker says 502.
impl ApiError {
    /// Maps a Kafka error to the API's: unavailability is 503, the caller's mistakes 4xx.
    pub(crate) fn from_kafka_code(what: &str, code: RDKafkaErrorCode, detail: &str) -> Self {
        use RDKafkaErrorCode as C;
        let detail = if detail.is_empty() {
            code.to_string()
        } else {
            format!("{code}: {detail}")
        };
        match code {
            C::OperationTimedOut
            | C::RequestTimedOut
            | C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::BrokerNotAvailable
            | C::LeaderNotAvailable
            | C::NotController
            | C::Resolve => ApiError::unavailable(format!(
                "{what}: the broker did not answer ({detail}); check that Kafka is up and reachable"
            )),
            C::TopicAlreadyExists => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::TopicExists,
                format!("{what}: {detail}"),
            ),
            C::UnknownTopicOrPartition | C::UnknownTopic => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::TopicNotFound,
                format!("{what}: {detail}"),
            ),
            C::GroupIdNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::GroupNotFound,
                format!("{what}: {detail}"),
            ),
            C::InvalidTopic => {
                ApiError::bad_request(ErrorCode::InvalidTopicName, format!("{what}: {detail}"))
            }
            C::InvalidPartitions => {
                ApiError::bad_request(ErrorCode::InvalidPartitions, format!("{what}: {detail}"))
            }
            C::InvalidReplicationFactor => ApiError::bad_request(
                ErrorCode::InvalidReplicationFactor,
                format!("{what}: {detail}"),
            ),
            C::InvalidConfig | C::PolicyViolation | C::InvalidRequest => {
                ApiError::bad_request(ErrorCode::InvalidConfig, format!("{what}: {detail}"))
            }
            _ => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::BrokerError,
                format!("{what}: {detail}"),
            ),
        }
    }

    /// Maps a failed rdkafka call to the API's error (its code, when it has one).
    pub(crate) fn from_kafka(what: &str, error: &KafkaError) -> Self {
        match (error, error.rdkafka_error_code()) {
            (_, Some(code)) => Self::from_kafka_code(what, code, ""),
            // rdkafka reports no code for a failed admin operation; the code is inside.
            (KafkaError::AdminOp(code), None) => Self::from_kafka_code(what, *code, ""),
            // A string with a NUL byte cannot reach librdkafka: the request's mistake.
            (KafkaError::Nul(_), None) => ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("{what}: a name or value contains a NUL byte"),
            ),
            (KafkaError::Canceled, None) => ApiError::unavailable(format!(
                "{what}: the request to the broker was cancelled; check that Kafka is up and reachable"
            )),
            _ => ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::BrokerError,
                format!("{what}: {error}"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error_code: self.code,
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => Self::bad_request(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidBody,
                format!("the body does not have the expected fields: {e}"),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            other => Self::bad_request(ErrorCode::InvalidBody, other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(ErrorCode::InvalidPath, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(ErrorCode::InvalidQuery, rejection.body_text())
    }
}
