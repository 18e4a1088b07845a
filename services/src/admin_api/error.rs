//! The API's one error type: every failure is JSON `{error_code, message}` with a status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
