//! The admin API in-process (`tower::ServiceExt::oneshot`, no socket) against the real test
//! broker (Apache Kafka, started by scripts/kafka.sh; `KAFKA_BOOTSTRAP_SERVERS` names it). Every
//! test uses its own topic and group names.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use services::admin_api::{self, AppState, Args};
use tower::ServiceExt;

mod common;
#[path = "support/lagging_group.rs"]
mod lagging_group;
use common::{assert_exports_service_metrics, bootstrap, unique};

fn state(bootstrap: &str, extra: &[&str]) -> AppState {
    let mut argv = vec!["kafka-admin-api", "--bootstrap-servers", bootstrap];
    if !extra.contains(&"--kafka-timeout") {
        argv.extend(["--kafka-timeout", "2s"]);
    }
    argv.extend_from_slice(extra);
    AppState::new(&Args::parse_from(argv)).unwrap()
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = admin_api::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

#[tokio::test]
async fn bad_requests_get_their_status_and_error_code() {
    let state = state(&bootstrap(), &[]);
    let existing = unique("exists");
    let (status, _) = call(
        &state,
        "POST",
        "/topics",
        Some(&json!({"name": existing, "partitions": 1, "replication_factor": 1}).to_string()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let long = "a".repeat(250);
    let existing_uri = format!("/topics/{existing}");
    let topic =
        |name: &str| json!({"name": name, "partitions": 1, "replication_factor": 1}).to_string();
    let cases: Vec<(&str, &str, Option<String>, StatusCode, &str)> = vec![
        ("POST", "/topics", Some("{\"name\": ".into()), StatusCode::BAD_REQUEST, "malformed_json"),
        ("POST", "/topics", Some("{\"name\": \"x\"}".into()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("POST", "/topics", Some("{\"name\": \"x\", \"partitions\": \"1\", \"replication_factor\": 1}".into()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("POST", "/topics", Some(topic("bad name!")), StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("POST", "/topics", Some(topic("")), StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("POST", "/topics", Some(topic(".")), StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("POST", "/topics", Some(topic("..")), StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("POST", "/topics", Some(topic(&long)), StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("POST", "/topics", Some(json!({"name": "p0", "partitions": 0, "replication_factor": 1}).to_string()), StatusCode::BAD_REQUEST, "invalid_partitions"),
        ("POST", "/topics", Some(json!({"name": "r0", "partitions": 1, "replication_factor": 0}).to_string()), StatusCode::BAD_REQUEST, "invalid_replication_factor"),
        ("POST", "/topics", Some(json!({"name": "r9", "partitions": 1, "replication_factor": 9}).to_string()), StatusCode::CONFLICT, "insufficient_brokers"),
        ("POST", "/topics", Some(json!({"name": "p-many", "partitions": 10_001, "replication_factor": 1}).to_string()), StatusCode::BAD_REQUEST, "invalid_partitions"),
        ("POST", "/topics", Some(json!({"name": "nul", "partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "1\u{0}"}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("POST", "/topics", Some(json!({"name": "nul-key", "partitions": 1, "replication_factor": 1, "configs": {"retention\u{0}.ms": "1"}}).to_string()), StatusCode::BAD_REQUEST, "unknown_config"),
        ("POST", "/topics", Some(json!({"name": "long-value", "partitions": 1, "replication_factor": 1, "configs": {"retention.ms": "1".repeat(40_000)}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("PUT", &existing_uri, Some(json!({"configs": {"retention.ms": "9".repeat(40_000)}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("POST", "/topics", Some(json!({"name": "c", "partitions": 1, "replication_factor": 1, "configs": {"retention.msx": "1"}}).to_string()), StatusCode::BAD_REQUEST, "unknown_config"),
        ("POST", "/topics", Some(topic(&existing)), StatusCode::CONFLICT, "topic_exists"),
        ("GET", "/topics/no-such-topic-xyz", None, StatusCode::NOT_FOUND, "topic_not_found"),
        ("PUT", "/topics/no-such-topic-xyz", Some("{\"configs\": {\"retention.ms\": \"1000\"}}".into()), StatusCode::NOT_FOUND, "topic_not_found"),
        ("PUT", &existing_uri, Some("{\"configs\": {}}".into()), StatusCode::BAD_REQUEST, "invalid_body"),
        ("PUT", &existing_uri, Some("{\"configs\": {\"nope\": \"1\"}}".into()), StatusCode::BAD_REQUEST, "unknown_config"),
        ("PUT", &existing_uri, Some(json!({"configs": {"retention.ms": "a week"}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("PUT", &existing_uri, Some(json!({"configs": {"cleanup.policy": "compact,forever"}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("POST", "/topics", Some(json!({"name": "typed", "partitions": 1, "replication_factor": 1, "configs": {"preallocate": "yes"}}).to_string()), StatusCode::BAD_REQUEST, "invalid_config"),
        ("DELETE", "/topics/no-such-topic-xyz", None, StatusCode::NOT_FOUND, "topic_not_found"),
        ("GET", "/topics/bad%20name", None, StatusCode::BAD_REQUEST, "invalid_topic_name"),
        ("GET", "/consumer-groups/no-such-group-xyz", None, StatusCode::NOT_FOUND, "group_not_found"),
        ("GET", "/nope", None, StatusCode::NOT_FOUND, "not_found"),
        ("PATCH", "/topics", None, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (method, uri, body, status, code) in cases {
        let (got, value) = call(&state, method, uri, body.as_deref(), None).await;
        assert_eq!(
            (got, value["error_code"].as_str()),
            (status, Some(code)),
            "{method} {uri} {body:?}: {value}"
        );
        assert!(
            !value["message"].as_str().unwrap_or_default().is_empty(),
            "{method} {uri}: an error says what is wrong"
        );
    }
    // A value of the wrong form is named with the form it must have, before any broker.
    let week = json!({"configs": {"retention.ms": "a week"}}).to_string();
    let (_, value) = call(&state, "PUT", &existing_uri, Some(&week), None).await;
    assert_eq!(
        value["message"],
        "`retention.ms` must be a whole number of 64 bits (e.g. 604800000), not `a week`"
    );
    let (status, value) = call(&state, "POST", "/topics", Some("{}"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{value}");
    // JSON Schema counts 2.0 as an integer: so does the API.
    let whole = json!({"name": unique("whole"), "partitions": 2.0, "replication_factor": 1.0});
    let (status, value) = call(&state, "POST", "/topics", Some(&whole.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["partitions"].as_array().map(Vec::len), Some(2));
    call(
        &state,
        "DELETE",
        &format!("/topics/{}", whole["name"].as_str().unwrap()),
        None,
        None,
    )
    .await;
    let response = admin_api::router(state.clone())
        .oneshot(
            Request::post("/topics")
                .body(Body::from(topic("no-content-type")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    call(&state, "DELETE", &format!("/topics/{existing}"), None, None).await;
}

#[tokio::test]
async fn a_token_guards_every_mutating_endpoint() {
    let state = state(&bootstrap(), &["--token", "s3cret"]);
    let name = unique("auth");
    let body = json!({"name": name, "partitions": 1, "replication_factor": 1}).to_string();
    for (method, uri, body) in [
        ("POST", "/topics".to_owned(), Some(body.as_str())),
        (
            "PUT",
            format!("/topics/{name}"),
            Some("{\"configs\": {\"retention.ms\": \"1000\"}}"),
        ),
        ("DELETE", format!("/topics/{name}"), None),
    ] {
        let (status, value) = call(&state, method, &uri, body, None).await;
        assert_eq!(
            (status, value["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{method} {uri}"
        );
        let (status, value) = call(&state, method, &uri, body, Some("guess")).await;
        assert_eq!(
            (status, value["error_code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {uri}"
        );
    }
    let (status, _) = call(&state, "GET", "/topics", None, None).await;
    assert_eq!(status, StatusCode::OK, "reads need no token");
    // Routing comes before auth: a wrong path or method says so to anyone.
    let (status, _) = call(&state, "POST", "/no-such-endpoint", Some("{}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&state, "PATCH", "/topics", Some("{}"), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // The scheme is case-insensitive.
    let lower = admin_api::router(state.clone())
        .oneshot(
            Request::delete(format!("/topics/{name}-never"))
                .header(header::AUTHORIZATION, "bearer s3cret")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        lower.status(),
        StatusCode::NOT_FOUND,
        "accepted, then no such topic"
    );
    let (status, value) = call(&state, "POST", "/topics", Some(&body), Some("s3cret")).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let (status, _) = call(
        &state,
        "DELETE",
        &format!("/topics/{name}"),
        None,
        Some("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let empty = AppState::new(&Args::parse_from(["kafka-admin-api", "--token", ""])).unwrap_err();
    assert!(
        empty
            .to_string()
            .starts_with("ADMIN_API_TOKEN is set but empty"),
        "{empty}"
    );
}

#[tokio::test]
async fn a_topic_from_creation_to_deletion_with_a_group_lagging_on_it() {
    let bootstrap = bootstrap();
    let state = state(&bootstrap, &[]);
    let name = unique("orders");
    let group = unique("billing");

    let created = json!({"name": name, "partitions": 3, "replication_factor": 1, "configs": {"cleanup.policy": "delete"}});
    let (status, value) = call(&state, "POST", "/topics", Some(&created.to_string()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    assert_eq!(value["partitions"].as_array().unwrap().len(), 3);

    let (status, value) = call(&state, "GET", "/topics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let listed = value["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name.as_str())
        .cloned();
    assert_eq!(
        listed,
        Some(json!({"name": name, "partitions": 3, "replication_factor": 1}))
    );
    assert!(
        value["topics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().starts_with("__")),
        "internal topics are hidden unless asked"
    );

    let (status, value) = call(&state, "GET", &format!("/topics/{name}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let partition = &value["partitions"][0];
    assert_eq!(partition["id"], 0);
    assert_eq!(partition["replicas"].as_array().unwrap().len(), 1);
    assert_eq!(partition["isr"], partition["replicas"]);
    assert_eq!(partition["leader"], partition["replicas"][0]);
    assert_eq!(value["configs"]["cleanup.policy"], "delete");

    let update = json!({"configs": {"retention.ms": "3600000"}}).to_string();
    let (status, value) = call(
        &state,
        "PUT",
        &format!("/topics/{name}"),
        Some(&update),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let (_, value) = call(&state, "GET", &format!("/topics/{name}"), None, None).await;
    assert_eq!(value["configs"]["retention.ms"], "3600000", "{value}");
    assert_eq!(
        value["configs"]["cleanup.policy"], "delete",
        "other keys keep their values"
    );

    // Ten records on partition 0; the group consumes four and commits.
    lagging_group::make(&bootstrap, &name, &group, 10, 4)
        .await
        .unwrap();

    let (status, value) = call(&state, "GET", "/consumer-groups", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        value["consumer_groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group_id"] == group.as_str()),
        "{value}"
    );
    let (status, value) = call(
        &state,
        "GET",
        &format!("/consumer-groups/{group}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(
        value["offsets"],
        json!([
            {"topic": name, "partition": 0, "committed_offset": 4, "log_end_offset": 10, "lag": 6},
            // Partitions of the group's topic without a commit, as kafka-consumer-groups
            // --describe lists them.
            {"topic": name, "partition": 1, "committed_offset": null, "log_end_offset": 0, "lag": null},
            {"topic": name, "partition": 2, "committed_offset": null, "log_end_offset": 0, "lag": null},
        ])
    );
    assert_eq!(value["total_lag"], 6);
    assert_eq!(
        value["max_lag"],
        json!({"topic": name, "partition": 0, "lag": 6})
    );

    let (status, text) = call(&state, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!(
            "kafka_consumergroup_lag{{group=\"{group}\",topic=\"{name}\",partition=\"0\"}} 6"
        )),
        "{text}"
    );
    assert!(text.contains("kafka_admin_broker_up 1"), "{text}");
    assert!(
        text.contains(
            "http_requests_total{method=\"GET\",route=\"/topics/{name}\",status=\"200\"}"
        ),
        "{text}"
    );
    assert_exports_service_metrics("kafka-admin-api", text);

    let (status, _) = call(&state, "DELETE", &format!("/topics/{name}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, value) = call(&state, "GET", &format!("/topics/{name}"), None, None).await;
    assert_eq!(
        (status, value["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("topic_not_found"))
    );
}

#[tokio::test]
async fn the_cluster_health_counts_a_partition_under_its_min_isr() {
    let state = state(&bootstrap(), &[]);
    let (status, health) = call(&state, "GET", "/cluster/health", None, None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["brokers"], json!([1]), "the test broker's node id");
    assert!(health["partitions"].as_u64().unwrap() > 0, "{health}");
    // One replica on the one broker, but two demanded in sync: acks=all writes are refused,
    // which the health reports (the broker accepts the topic as it is).
    let name = unique("health");
    let body = json!({"name": name, "partitions": 2, "replication_factor": 1,
        "configs": {"min.insync.replicas": "2"}})
    .to_string();
    let (status, created) = call(&state, "POST", "/topics", Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, health) = call(&state, "GET", "/cluster/health", None, None).await;
    assert_eq!(health["healthy"], json!(false), "{health}");
    let ours: Vec<&Value> = health["unhealthy"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == json!(name))
        .collect();
    assert_eq!(
        ours,
        [0, 1]
            .map(|partition| json!({"topic": name, "partition": partition,
                "problem": "under_min_isr", "leader": 1, "replicas": [1], "isr": [1]}))
            .iter()
            .collect::<Vec<_>>()
    );
    assert!(health["under_min_isr_partitions"].as_u64().unwrap() >= 2);
    let (status, _) = call(&state, "DELETE", &format!("/topics/{name}"), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_unreachable_broker_is_a_fast_503_and_health_stays_up() {
    // Nothing listens on port 1.
    let state = state("127.0.0.1:1", &["--kafka-timeout", "1s"]);
    let (status, value) = call(&state, "GET", "/health", None, None).await;
    assert_eq!(
        (status, value["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    for uri in [
        "/ready",
        "/cluster/health",
        "/brokers",
        "/topics",
        "/topics/orders",
        "/consumer-groups",
        "/consumer-groups/g",
    ] {
        let started = Instant::now();
        let (status, value) = call(&state, "GET", uri, None, None).await;
        assert_eq!(
            (status, value["error_code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("broker_unavailable")),
            "{uri}: {value}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{uri} took {:?}",
            started.elapsed()
        );
    }
    let body = json!({"name": "t", "partitions": 1, "replication_factor": 1}).to_string();
    let (status, _) = call(&state, "POST", "/topics", Some(&body), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // An admin operation's failure carries its code inside: still 503, not 502.
    let (status, value) = call(&state, "DELETE", "/topics/t", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
    let update = json!({"configs": {"retention.ms": "1000"}}).to_string();
    let (status, value) = call(&state, "PUT", "/topics/t", Some(&update), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{value}");
    let (status, text) = call(&state, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.as_str().unwrap().contains("kafka_admin_broker_up 0"));
    // Later scrapes answer from that reading while the next is taken: none waits for the
    // broker's timeout (1 s) again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let (_, text) = call(&state, "GET", "/metrics", None, None).await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a scrape waited {:?} for the broker",
            started.elapsed()
        );
        assert!(text.as_str().unwrap().contains("kafka_admin_broker_up 0"));
    }
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let open = state(
        "127.0.0.1:1",
        &["--kafka-timeout", "1s", "--max-partitions", "50"],
    );
    let (_, spec) = call(&open, "GET", "/openapi.json", None, None).await;
    assert!(
        !spec.to_string().contains("bearer"),
        "without a token the document asks for none"
    );
    assert_eq!(
        spec["components"]["schemas"]["NewTopicRequest"]["properties"]["partitions"]["maximum"],
        json!(50),
        "the document states the server's own limit"
    );
    // The document's name pattern is Kafka's rule, the one the API applies.
    let pattern = spec["components"]["schemas"]["NewTopicRequest"]["properties"]["name"]["pattern"]
        .as_str()
        .unwrap();
    let pattern = regex::Regex::new(pattern).unwrap();
    let long = "n".repeat(249);
    let too_long = "n".repeat(250);
    for name in [
        "orders", ".", "..", "...", ".a", "..a", "a.", "_x-1.y", "", "a b", "é", &long, &too_long,
    ] {
        assert_eq!(
            pattern.is_match(name),
            services::topic_name::problem(name).is_none(),
            "{name:?}"
        );
    }
    let state = state("127.0.0.1:1", &["--kafka-timeout", "1s", "--token", "t"]);
    let (status, spec) = call(&state, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spec, serde_json::to_value(admin_api::openapi()).unwrap());
    let paths = spec["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            let uri = path
                .replace("{name}", "some-topic")
                .replace("{id}", "some-group");
            let body = matches!(method.as_str(), "post" | "put").then_some("{}");
            let (status, value) = call(&state, &method.to_uppercase(), &uri, body, None).await;
            assert!(
                !matches!(
                    value["error_code"].as_str(),
                    Some("not_found" | "method_not_allowed")
                ),
                "{method} {path} is documented but not routed: {status} {value}"
            );
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /topics/{name}",
            "GET /brokers",
            "GET /cluster/health",
            "GET /consumer-groups",
            "GET /consumer-groups/{id}",
            "GET /health",
            "GET /metrics",
            "GET /ready",
            "GET /topics",
            "GET /topics/{name}",
            "POST /topics",
            "PUT /topics/{name}",
        ]
    );
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}
