//! `GET /metrics`: request counts and latencies, whether the broker answers, and every
//! consumer group's lag per partition (`kafka_consumergroup_lag`, which the platform's
//! ConsumerLag alert uses).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::kafka::Cluster;

/// Labels of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// HTTP method.
    pub(crate) method: String,
    /// The matched route (`/topics/{name}`), never the raw path.
    pub(crate) route: String,
    /// Status code.
    pub(crate) status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: i32,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

/// The API's own metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    /// Records one answered request.
    pub(crate) fn observe(&self, labels: &RequestLabels, elapsed: Duration) {
        self.requests.get_or_create(labels).inc();
        self.latency
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the broker's state and every group's lag read now.
    pub(crate) async fn render(&self, cluster: &Cluster) -> String {
        let mut live = Registry::default();
        let up = Gauge::<i64>::default();
        let lag = Family::<LagLabels, Gauge<i64>>::default();
        live.register(
            "kafka_admin_broker_up",
            "1 when the broker answered this scrape",
            up.clone(),
        );
        live.register(
            "kafka_consumergroup_lag",
            "Messages a consumer group has still to consume, per partition",
            lag.clone(),
        );
        match cluster.groups(None).await {
            Ok(groups) => {
                up.set(1);
                for group in groups {
                    let offsets = cluster.group_offsets(&group.id).await.unwrap_or_default();
                    for offset in offsets {
                        if let Some(value) = offset.lag() {
                            lag.get_or_create(&LagLabels {
                                group: group.id.clone(),
                                topic: offset.topic.clone(),
                                partition: offset.partition,
                            })
                            .set(value);
                        }
                    }
                }
            }
            Err(_) => {
                up.set(0);
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &live);
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }
}
