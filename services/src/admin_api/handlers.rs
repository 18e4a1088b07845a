//! The endpoints. Each validates what it can before calling the broker, and answers every
//! failure with the API's error type.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::health::{self, ClusterHealth};
use super::kafka::{Broker, Member, Partition, Topic};
use super::validate;

/// `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    pub status: String,
}

/// `GET /ready`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// Brokers the metadata lists.
    pub brokers: usize,
}

/// `GET /brokers`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Brokers {
    /// Live brokers, by id.
    pub brokers: Vec<Broker>,
}

/// A topic in a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicSummary {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// Replicas per partition.
    pub replication_factor: usize,
}

/// `GET /topics`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Topics {
    /// Topics, by name.
    pub topics: Vec<TopicSummary>,
}

/// `GET /topics` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopicsQuery {
    /// Include Kafka's internal topics (`__consumer_offsets`, …).
    #[serde(default)]
    pub internal: bool,
}

/// The path of one topic: `/topics/{name}`.
#[derive(Debug, Deserialize)]
pub struct TopicPath {
    /// Topic name: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
    pub name: String,
}

/// The one parameter, `name`, with the topic name rule's schema (a derived `IntoParams`
/// cannot both take a schema function and mark the parameter required).
impl IntoParams for TopicPath {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        vec![
            ParameterBuilder::new()
                .name("name")
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .description(Some(TOPIC_NAME_RULE))
                .schema(Some(topic_name_schema()))
                .build(),
        ]
    }
}

/// Kafka's topic name rule in words.
const TOPIC_NAME_RULE: &str = "Topic name: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`";

/// Kafka's topic name rule (what `validate::topic_name` checks) as a schema: 1–249
/// characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn topic_name_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(TOPIC_NAME_RULE))
        .pattern(Some("^([a-zA-Z0-9_-][a-zA-Z0-9._-]{0,248}|\\.[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,247}|\\.\\.[a-zA-Z0-9._-]{1,247})$"))
        .min_length(Some(1))
        .max_length(Some(249))
        .build()
}

/// `POST /topics` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTopicRequest {
    /// Name: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
    #[schema(schema_with = topic_name_schema)]
    pub name: String,
    /// Partitions (1 to the server's `--max-partitions`).
    #[schema(minimum = 1, maximum = 10_000)]
    #[serde(deserialize_with = "whole_number")]
    pub partitions: i32,
    /// Replicas per partition (at least 1, at most the live brokers).
    #[schema(minimum = 1, maximum = 32_767)]
    #[serde(deserialize_with = "whole_number")]
    pub replication_factor: i32,
    /// Topic configuration, e.g. `{"retention.ms": "3600000"}`.
    #[serde(default)]
    #[schema(schema_with = configs_schema)]
    pub configs: BTreeMap<String, String>,
}

/// An integer as JSON Schema counts them: `3` or `3.0` (the same number).
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
            .map(|f| f as i64)
    });
    whole
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number in range")))
}

/// A topic configuration map as the API validates it: known keys, each value of its key's
/// form, or Confluent Server's `confluent.` keys, values without NUL bytes of at most 16384
/// bytes.
fn config_map(min_properties: Option<usize>) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AnyOf, ObjectBuilder, Type};
    let known: Vec<serde_json::Value> = validate::TOPIC_CONFIGS
        .iter()
        .map(|&(key, _)| serde_json::Value::from(key))
        .collect();
    let names = AnyOf::builder()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(known)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(validate::CONFLUENT_KEY_PATTERN)),
        )
        .build();
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(validate::MAX_CONFIG_VALUE))
        .pattern(Some("^[^\\u0000]*$"));
    let mut map = ObjectBuilder::new().schema_type(Type::Object);
    for &(key, form) in validate::TOPIC_CONFIGS {
        let typed = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(form.pattern()));
        map = map.property(key, typed);
    }
    map.property_names(Some(names))
        .additional_properties(Some(value))
        .min_properties(min_properties)
        .build()
}

fn configs_schema() -> utoipa::openapi::schema::Object {
    config_map(None)
}

fn nonempty_configs_schema() -> utoipa::openapi::schema::Object {
    config_map(Some(1))
}

/// `GET /topics/{name}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopicDetail {
    /// Name.
    pub name: String,
    /// Replicas per partition.
    pub replication_factor: usize,
    /// Partitions, by id.
    pub partitions: Vec<Partition>,
    /// Configuration the broker reports for the topic.
    pub configs: BTreeMap<String, String>,
}

/// `PUT /topics/{name}` body.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfigUpdate {
    /// Keys to set (at least one); keys not named keep their values.
    #[schema(schema_with = nonempty_configs_schema)]
    pub configs: BTreeMap<String, String>,
}

/// A group in a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupInfo {
    /// Group id.
    pub group_id: String,
    /// State (`Stable`, `Empty`, …).
    pub state: String,
    /// Protocol type (`consumer` for consumer groups).
    pub protocol_type: String,
    /// Member count.
    pub members: usize,
}

/// `GET /consumer-groups`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Groups {
    /// Groups, by id.
    pub consumer_groups: Vec<GroupInfo>,
}

/// A group's position on one partition.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OffsetInfo {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (`null`: nothing committed on this partition of a topic the group
    /// consumes).
    pub committed_offset: Option<i64>,
    /// Log-end offset.
    pub log_end_offset: i64,
    /// `log_end_offset - committed_offset` (`null` without a committed offset).
    pub lag: Option<i64>,
}

/// The partition the group lags most on (Confluent REST Proxy's `lag-summary`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MaxLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Its lag.
    pub lag: i64,
}

/// `GET /consumer-groups/{id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupDetail {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: String,
    /// Members.
    pub members: Vec<Member>,
    /// Committed offsets, by topic and partition.
    pub offsets: Vec<OffsetInfo>,
    /// The largest lag (`null` when nothing is committed).
    pub max_lag: Option<MaxLag>,
    /// Sum of the lags of the partitions with a committed offset.
    pub total_lag: i64,
}

fn detail(topic: &Topic, configs: BTreeMap<String, String>) -> TopicDetail {
    TopicDetail {
        name: topic.name.clone(),
        replication_factor: topic.replication_factor(),
        partitions: topic.partitions.clone(),
        configs,
    }
}

fn topic_not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::TopicNotFound,
        format!("there is no topic `{name}`"),
    )
}

async fn describe(state: &AppState, name: &str) -> Result<TopicDetail, ApiError> {
    let topic = state
        .cluster
        .topic(name)
        .await?
        .ok_or_else(|| topic_not_found(name))?;
    let configs = state.cluster.topic_configs(name).await?;
    Ok(detail(&topic, configs))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the broker answers a metadata request now.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, body = Ready),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let snapshot = state.cluster.fetch_snapshot().await?;
    Ok(Json(Ready {
        status: "ready".to_owned(),
        brokers: snapshot.brokers.len(),
    }))
}

/// The cluster's health, read now: live brokers, and the partitions offline, under their
/// `min.insync.replicas` or under-replicated. `healthy` is what a rolling restart waits for
/// before it touches the next node.
#[utoipa::path(get, path = "/cluster/health", responses(
    (status = 200, body = ClusterHealth),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn cluster_health(
    State(state): State<AppState>,
) -> Result<Json<ClusterHealth>, ApiError> {
    let snapshot = state.cluster.fetch_snapshot().await?;
    let min_isr = state
        .cluster
        .min_insync_replicas(snapshot.topics.keys().map(String::as_str))
        .await?;
    Ok(Json(health::assess(&snapshot, &min_isr)))
}

/// The cluster's brokers.
#[utoipa::path(get, path = "/brokers", responses(
    (status = 200, body = Brokers),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn brokers(State(state): State<AppState>) -> Result<Json<Brokers>, ApiError> {
    let snapshot = state.cluster.snapshot().await?;
    let mut brokers = snapshot.brokers.clone();
    brokers.sort_by_key(|b| b.id);
    Ok(Json(Brokers { brokers }))
}

/// Topics with their partition count and replication factor.
#[utoipa::path(get, path = "/topics", params(TopicsQuery), responses(
    (status = 200, body = Topics),
    (status = 400, description = "`internal` is not `true` or `false`", body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn list_topics(
    State(state): State<AppState>,
    query: Result<Query<TopicsQuery>, QueryRejection>,
) -> Result<Json<Topics>, ApiError> {
    let Query(query) = query?;
    let snapshot = state.cluster.snapshot().await?;
    let topics = snapshot
        .topics
        .values()
        .filter(|t| query.internal || !t.is_internal())
        .map(|t| TopicSummary {
            name: t.name.clone(),
            partitions: t.partitions.len(),
            replication_factor: t.replication_factor(),
        })
        .collect();
    Ok(Json(Topics { topics }))
}

/// Creates a topic.
#[utoipa::path(post, path = "/topics", request_body = NewTopicRequest, security(("bearer" = [])), responses(
    (status = 201, body = TopicDetail),
    (status = 400, description = "invalid name, partitions, replication factor, config key or JSON", body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody),
    (status = 409, description = "the topic exists, or more replicas than live brokers", body = ErrorBody),
    (status = 415, description = "the body is not `application/json`", body = ErrorBody),
    (status = 422, description = "the JSON lacks a field or has a wrong type", body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn create_topic(
    State(state): State<AppState>,
    body: Result<Json<NewTopicRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    validate::topic_name(&request.name)?;
    if request.partitions < 1 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPartitions,
            format!(
                "partitions is {}; a topic needs at least 1",
                request.partitions
            ),
        ));
    }
    if request.replication_factor < 1 {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "replication_factor is {}; it must be at least 1",
                request.replication_factor
            ),
        ));
    }
    if request.partitions > state.max_partitions {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidPartitions,
            format!(
                "partitions is {}; this API creates at most {} (--max-partitions)",
                request.partitions, state.max_partitions
            ),
        ));
    }
    validate::configs(&request.configs)?;
    // A well-formed request the cluster's state cannot take now.
    let insufficient = |live: &str| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InsufficientBrokers,
            format!(
                "replication_factor is {} but {live}; retry once the brokers are back",
                request.replication_factor
            ),
        )
    };
    let live = state.cluster.snapshot().await?.brokers.len();
    if usize::try_from(request.replication_factor).unwrap_or(usize::MAX) > live {
        return Err(insufficient(&format!("only {live} broker(s) are live")));
    }
    state
        .cluster
        .create_topic(
            &request.name,
            request.partitions,
            request.replication_factor,
            &request.configs,
        )
        .await
        .map_err(|error| match error.code {
            // The factor is at least 1: Kafka refuses it only for want of live brokers, which
            // it counted after the metadata above (a broker lost in between).
            ErrorCode::InvalidReplicationFactor => {
                insufficient(&format!("Kafka counts fewer than {live} live brokers"))
            }
            _ => error,
        })?;
    let created = describe(&state, &request.name).await?;
    let location = format!("/topics/{}", request.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

/// A topic's partitions (leader, replicas, ISR) and configuration.
#[utoipa::path(get, path = "/topics/{name}", params(TopicPath), responses(
    (status = 200, body = TopicDetail),
    (status = 400, description = "not a topic name", body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn get_topic(
    State(state): State<AppState>,
    name: Result<Path<TopicPath>, PathRejection>,
) -> Result<Json<TopicDetail>, ApiError> {
    let Path(TopicPath { name }) = name?;
    validate::topic_name(&name)?;
    Ok(Json(describe(&state, &name).await?))
}

/// Sets configuration keys of a topic (IncrementalAlterConfigs: other keys keep their values).
#[utoipa::path(put, path = "/topics/{name}", params(TopicPath), request_body = TopicConfigUpdate, security(("bearer" = [])), responses(
    (status = 200, body = TopicDetail),
    (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 415, description = "the body is not `application/json`", body = ErrorBody),
    (status = 422, body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn update_topic(
    State(state): State<AppState>,
    name: Result<Path<TopicPath>, PathRejection>,
    body: Result<Json<TopicConfigUpdate>, JsonRejection>,
) -> Result<Json<TopicDetail>, ApiError> {
    let Path(TopicPath { name }) = name?;
    let Json(update) = body?;
    validate::topic_name(&name)?;
    if update.configs.is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            "`configs` is empty: name at least one key to set",
        ));
    }
    validate::configs(&update.configs)?;
    if state.cluster.topic(&name).await?.is_none() {
        return Err(topic_not_found(&name));
    }
    state
        .cluster
        .alter_topic_configs(&name, &update.configs)
        .await?;
    Ok(Json(describe(&state, &name).await?))
}

/// Deletes a topic.
#[utoipa::path(delete, path = "/topics/{name}", params(TopicPath), security(("bearer" = [])), responses(
    (status = 204, description = "deleted"),
    (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn delete_topic(
    State(state): State<AppState>,
    name: Result<Path<TopicPath>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(TopicPath { name }) = name?;
    validate::topic_name(&name)?;
    state.cluster.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Consumer groups.
#[utoipa::path(get, path = "/consumer-groups", responses(
    (status = 200, body = Groups),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn list_groups(State(state): State<AppState>) -> Result<Json<Groups>, ApiError> {
    let groups = state.cluster.groups(None).await?;
    Ok(Json(Groups {
        consumer_groups: groups
            .into_iter()
            .map(|g| GroupInfo {
                members: g.members.len(),
                group_id: g.id,
                state: g.state,
                protocol_type: g.protocol_type,
            })
            .collect(),
    }))
}

/// A group's state, members, and committed offset, log-end offset and lag per partition.
#[utoipa::path(get, path = "/consumer-groups/{id}", params(("id" = String, Path, description = "Group id")), responses(
    (status = 200, body = GroupDetail),
    (status = 404, body = ErrorBody),
    (status = 502, description = "the broker answered with an error", body = ErrorBody),
    (status = 503, description = "the broker did not answer", body = ErrorBody),
))]
pub async fn get_group(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<GroupDetail>, ApiError> {
    let Path(id) = id?;
    // librdkafka's group list describes every group (state and members) in the same call.
    let group = state
        .cluster
        .groups(None)
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::GroupNotFound,
                format!("there is no consumer group `{id}`"),
            )
        })?;
    let offsets = state.cluster.group_offsets(&id).await?;
    let offsets: Vec<OffsetInfo> = offsets
        .into_iter()
        .map(|o| OffsetInfo {
            lag: o.lag(),
            topic: o.topic,
            partition: o.partition,
            committed_offset: o.committed,
            log_end_offset: o.log_end,
        })
        .collect();
    let max_lag = offsets
        .iter()
        .filter_map(|o| Some((o, o.lag?)))
        .max_by_key(|(_, lag)| *lag)
        .map(|(o, lag)| MaxLag {
            topic: o.topic.clone(),
            partition: o.partition,
            lag,
        });
    Ok(Json(GroupDetail {
        total_lag: offsets.iter().filter_map(|o| o.lag).sum(),
        max_lag,
        group_id: id,
        state: group.state,
        members: group.members,
        offsets,
    }))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(&state.cluster).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
