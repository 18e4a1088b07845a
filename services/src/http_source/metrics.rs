//! `GET /metrics`: the connector's state, records polled, produced and skipped, errors,
//! the last successful poll and the records not yet covered by a committed offset. The names
//! the platform's alerts and dashboards use are listed in `kafka-components`'
//! `render::SERVICE_METRICS`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::State;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    connector: String,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    connector: String,
    kind: String,
}

/// Why records were not produced.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Skip {
    /// At or before the committed offset.
    Offset,
    /// Already in the topic from a run that stopped before committing.
    Recovered,
}

/// What went wrong.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ErrorKind {
    /// 429, 5xx, timeout or connection error; retried.
    HttpRetried,
    /// Another 4xx, a bad body: the connector failed.
    Source,
    /// The broker refused or was away.
    Kafka,
}

/// One connector's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    connector: String,
    status: Family<StatusLabels, Gauge>,
    polled: Family<ConnectorLabels, Counter>,
    produced: Family<ConnectorLabels, Counter>,
    skipped: Family<KindLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    polls: Family<ConnectorLabels, Counter>,
    last_success: Family<ConnectorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    uncommitted: Family<ConnectorLabels, Gauge>,
}

impl Metrics {
    /// Metrics of the connector `name`, all at zero and state RUNNING.
    pub(crate) fn new(name: &str) -> Self {
        let mut registry = Registry::default();
        let status = Family::default();
        let polled = Family::default();
        let produced = Family::default();
        let skipped = Family::default();
        let errors = Family::default();
        let polls = Family::default();
        let last_success = Family::default();
        let uncommitted = Family::default();
        registry.register(
            "http_source_connector_status",
            "1 for the connector's current state (running, paused, failed)",
            status.clone(),
        );
        registry.register(
            "http_source_records_polled",
            "Records read from the source",
            polled.clone(),
        );
        registry.register(
            "http_source_records_produced",
            "Records the broker acknowledged",
            produced.clone(),
        );
        registry.register(
            "http_source_records_skipped",
            "Records not produced: at or before the committed offset, or already in the topic",
            skipped.clone(),
        );
        registry.register(
            "http_source_errors",
            "Errors: http_retried (429/5xx/timeouts), source (the connector failed), kafka",
            errors.clone(),
        );
        registry.register(
            "http_source_polls",
            "Polls completed (every page fetched)",
            polls.clone(),
        );
        registry.register(
            "http_source_last_success_timestamp_seconds",
            "When the last poll completed (Unix time)",
            last_success.clone(),
        );
        registry.register(
            "http_source_offset_lag_records",
            "Records handed to the producer whose offset is not committed yet",
            uncommitted.clone(),
        );
        let metrics = Self {
            registry,
            connector: name.to_owned(),
            status,
            polled,
            produced,
            skipped,
            errors,
            polls,
            last_success,
            uncommitted,
        };
        metrics.state(State::Running);
        metrics
    }

    fn labels(&self) -> ConnectorLabels {
        ConnectorLabels {
            connector: self.connector.clone(),
        }
    }

    fn kind(&self, kind: &str) -> KindLabels {
        KindLabels {
            connector: self.connector.clone(),
            kind: kind.to_owned(),
        }
    }

    pub(crate) fn state(&self, state: State) {
        for each in [State::Running, State::Paused, State::Failed] {
            self.status
                .get_or_create(&StatusLabels {
                    connector: self.connector.clone(),
                    status: each.as_str().to_ascii_lowercase(),
                })
                .set(i64::from(each == state));
        }
    }

    pub(crate) fn polled(&self, records: usize) {
        self.polled
            .get_or_create(&self.labels())
            .inc_by(records as u64);
    }

    pub(crate) fn produced(&self, records: usize) {
        self.produced
            .get_or_create(&self.labels())
            .inc_by(records as u64);
    }

    /// Records the broker acknowledged so far.
    pub(crate) fn produced_so_far(&self) -> u64 {
        self.produced.get_or_create(&self.labels()).get()
    }

    pub(crate) fn skipped(&self, why: Skip, records: usize) {
        let kind = match why {
            Skip::Offset => "offset",
            Skip::Recovered => "recovered",
        };
        self.skipped
            .get_or_create(&self.kind(kind))
            .inc_by(records as u64);
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        let kind = match kind {
            ErrorKind::HttpRetried => "http_retried",
            ErrorKind::Source => "source",
            ErrorKind::Kafka => "kafka",
        };
        self.errors.get_or_create(&self.kind(kind)).inc();
    }

    pub(crate) fn poll_succeeded(&self) {
        self.polls.get_or_create(&self.labels()).inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.get_or_create(&self.labels()).set(now);
    }

    pub(crate) fn uncommitted(&self, records: i64) {
        self.uncommitted
            .get_or_create(&self.labels())
            .inc_by(records);
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
