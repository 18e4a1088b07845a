//! `GET /metrics`: request counts and latencies, whether the broker answers, and every
//! consumer group's lag per partition (`kafka_consumergroup_lag`, which the platform's
//! ConsumerLag alert uses).
//!
//! Reading the lag asks the group coordinator and every partition's leader for each group:
//! seconds with many groups or a broker away, longer than a scrape may take. So a scrape
//! answers from the last reading and, when that is older than [`LAG_MAX_AGE`], starts the
//! next one in the background; only the first scrape waits for a reading.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// How old a lag reading may be before a scrape starts the next.
const LAG_MAX_AGE: Duration = Duration::from_secs(1);

/// One reading of the brokers: whether they answered, and every group's lag.
#[derive(Debug, Clone)]
struct LagReading {
    up: bool,
    lags: Vec<(LagLabels, i64)>,
    at: Instant,
}

impl LagReading {
    async fn take(cluster: &Cluster) -> Self {
        let mut lags = Vec::new();
        let up = match cluster.groups(None).await {
            Ok(groups) => {
                for group in groups {
                    let offsets = cluster.group_offsets(&group.id).await.unwrap_or_default();
                    lags.extend(offsets.into_iter().filter_map(|offset| {
                        let lag = offset.lag()?;
                        let labels = LagLabels {
                            group: group.id.clone(),
                            topic: offset.topic,
                            partition: offset.partition,
                        };
                        Some((labels, lag))
                    }));
                }
                true
            }
            Err(_) => false,
        };
        Self {
            up,
            lags,
            at: Instant::now(),
        }
    }
}

/// The API's own metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// The last lag reading, if any was taken.
    lag: Mutex<Option<LagReading>>,
    /// Whether a reading is being taken in the background.
    reading: AtomicBool,
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
            lag: Mutex::new(None),
            reading: AtomicBool::new(false),
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

    /// The text exposition, with the broker's state and every group's lag from the last
    /// reading (taken now when there is none; renewed in the background when it is older than
    /// [`LAG_MAX_AGE`]).
    pub(crate) async fn render(self: &Arc<Self>, cluster: &Arc<Cluster>) -> String {
        let last = self
            .lag
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let reading = match last {
            None => {
                let reading = LagReading::take(cluster).await;
                self.keep(reading.clone());
                reading
            }
            Some(reading) => {
                if reading.at.elapsed() >= LAG_MAX_AGE && !self.reading.swap(true, Ordering::AcqRel)
                {
                    let (metrics, cluster) = (Arc::clone(self), Arc::clone(cluster));
                    tokio::spawn(async move {
                        metrics.keep(LagReading::take(&cluster).await);
                        metrics.reading.store(false, Ordering::Release);
                    });
                }
                reading
            }
        };
        let mut live = Registry::default();
        let up = Gauge::<i64>::default();
        let lag = Family::<LagLabels, Gauge<i64>>::default();
        live.register(
            "kafka_admin_broker_up",
            "1 when the brokers answered the last reading",
            up.clone(),
        );
        live.register(
            "kafka_consumergroup_lag",
            "Messages a consumer group has still to consume, per partition",
            lag.clone(),
        );
        up.set(i64::from(reading.up));
        for (labels, value) in &reading.lags {
            lag.get_or_create(labels).set(*value);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &live);
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }

    fn keep(&self, reading: LagReading) {
        *self.lag.lock().unwrap_or_else(PoisonError::into_inner) = Some(reading);
    }
}
