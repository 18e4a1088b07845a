//! The HTTP source connector: polls a REST API, writes its records to a Kafka topic, and
//! loses nothing.
//!
//! - Each poll requests the configured URL (with the current offset in place of
//!   `${offset}`), follows next links or cursors until the source has no more pages, and
//!   hands every record after the current offset to an idempotent, acks=all producer.
//! - Records are grouped by page; a page's offset is committed to the compacted offset topic
//!   only once the broker acknowledged every record of it and of every page before it.
//! - On start the committed offset is read back, together with the records produced after it
//!   by a run that stopped before committing them; records at or before the offset, and those
//!   already in the topic, are not produced again.
//! - 429, 5xx, timeouts and connection errors are retried with backoff (Retry-After
//!   honoured); another 4xx or a body that cannot be read fails the connector with the reason
//!   (`FAILED` in its status) and polling stops until `POST …/restart`. While the broker is away
//!   records wait in the producer; nothing fetched is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::BaseRecord;
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};

pub mod config;
mod kafka;
mod metrics;
pub mod offset;
mod rest;
mod scan;
mod source;

pub use config::{ConfigError, ConnectorConfig};
pub use kafka::PRODUCER_DEFAULTS;
pub use offset::StoredOffset;
pub use rest::router;

use kafka::{Acks, RecordBytes, Recovered, StartError};
use metrics::{ErrorKind, Metrics, Skip};
use offset::{SourceOffset, offset_key};
use source::{Attempt, Source};

/// Pages handed to the producer whose offsets are not committed yet, at most.
const PAGES_IN_FLIGHT: usize = 128;

/// Pages of a poll fetched and read ahead of the producer, at most.
const PAGES_AHEAD: usize = 2;

/// The task fetching a poll's pages: stopped with the poll.
struct Fetching(tokio::task::JoinHandle<()>);

impl Drop for Fetching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether `record` is one a stopped run produced after its last commit; if so it is
/// matched off, once.
fn recovers(
    already_produced: &mut HashMap<RecordBytes, usize>,
    record: &source::Record<'_>,
) -> bool {
    let bytes = (
        record.key.as_deref().map(<[u8]>::to_vec),
        record.value.to_vec(),
    );
    let Some(count) = already_produced.get_mut(&bytes) else {
        return false;
    };
    *count -= 1;
    if *count == 0 {
        already_produced.remove(&bytes);
    }
    true
}

/// A connector's state, as Kafka Connect names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// Polling (or waiting for the next poll, or retrying).
    Running,
    /// Paused by `PUT /connectors/{name}/pause`.
    Paused,
    /// Stopped by an error retrying cannot fix; the trace says which.
    Failed,
}

impl State {
    /// `RUNNING`, `PAUSED`, `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Failed => "FAILED",
        }
    }
}

/// The state and, for FAILED or while retrying, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The state.
    pub state: State,
    /// Why it failed, or what it is retrying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// What the connector has been asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Running,
    Paused,
    Stopped,
}

/// Records of one page on their way to the broker.
struct Batch {
    /// The broker's answers for them.
    acks: Arc<Acks>,
    /// How many.
    records: usize,
    /// The offset once all of them (and every earlier batch) are in.
    offset: Option<SourceOffset>,
    /// Produced while records of an earlier, uncommitted run are still to be matched: the
    /// commit keeps the earlier positions so a crash now still finds those records.
    recovering: bool,
}

/// One running connector.
pub struct Connector {
    config: Arc<ConnectorConfig>,
    producer: kafka::Producer,
    source: Source,
    metrics: Metrics,
    status: Mutex<Status>,
    committed: Mutex<Option<StoredOffset>>,
    target: watch::Sender<Target>,
    restart: Notify,
    kafka_timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("name", &self.config.name)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// How a fetch ended without a body.
enum Interrupted {
    Stopped,
    Failed(String),
}

/// Waits `duration`, or less if the connector is paused or stopped; false if stopped.
async fn pause_point(target: &mut watch::Receiver<Target>, duration: Duration) -> bool {
    let sleep = tokio::time::sleep(duration);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return *target.borrow() != Target::Stopped,
            changed = target.changed() => match (changed, *target.borrow_and_update()) {
                (Err(_), _) | (_, Target::Stopped) => return false,
                (_, Target::Paused) => return true,
                (_, Target::Running) => {}
            },
        }
    }
}

/// Why a valid configuration still cannot make a connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// librdkafka refused the producer settings (`config.producer.*`).
    #[error("cannot create the Kafka producer (check config.producer.*): {0}")]
    Producer(String),
    /// The HTTP client cannot be built (TLS backend, headers).
    #[error("cannot create the HTTP client (check config.http.request.*): {0}")]
    HttpClient(String),
}

impl Connector {
    /// A connector for `config`; `kafka_timeout` bounds each broker call at start.
    pub fn new(config: ConnectorConfig, kafka_timeout: Duration) -> Result<Arc<Self>, BuildError> {
        let producer = kafka::producer(&config).map_err(|e| BuildError::Producer(e.to_string()))?;
        let source = Source::new(&config).map_err(BuildError::HttpClient)?;
        let metrics = Metrics::new(&config.name);
        Ok(Arc::new(Self {
            config: Arc::new(config),
            producer,
            source,
            metrics,
            status: Mutex::new(Status {
                state: State::Running,
                trace: None,
            }),
            committed: Mutex::new(None),
            target: watch::Sender::new(Target::Running),
            restart: Notify::new(),
            kafka_timeout,
        }))
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// Its state now.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last committed offset record.
    pub fn committed(&self) -> Option<StoredOffset> {
        self.committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the broker has acknowledged since the connector was made (its offset may not
    /// be committed yet): `http_source_records_produced_total` in the metrics.
    pub fn produced(&self) -> u64 {
        self.metrics.produced_so_far()
    }

    /// The Prometheus text exposition of its metrics.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Stops polling after the current poll; records in flight are still committed.
    pub fn pause(&self) {
        self.retarget(Target::Running, Target::Paused);
    }

    /// Polls again after a pause.
    pub fn resume(&self) {
        self.retarget(Target::Paused, Target::Running);
    }

    /// Moves the target from `from` to `to`; no effect from any other target.
    fn retarget(&self, from: Target, to: Target) {
        self.target.send_if_modified(|t| {
            let changed = *t == from;
            if changed {
                *t = to;
            }
            changed
        });
    }

    /// Starts a FAILED connector again (from its committed offset); no effect otherwise.
    pub fn restart(&self) {
        if self.status().state == State::Failed {
            self.restart.notify_one();
        }
    }

    /// Stops polling; `run` returns once what was produced is committed.
    pub fn stop(&self) {
        self.target.send_replace(Target::Stopped);
    }

    fn set_status(&self, state: State, trace: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if status.state != state {
            tracing::info!(connector = %self.config.name, from = status.state.as_str(), to = state.as_str(), "state");
        }
        *status = Status { state, trace };
        self.metrics.state(state);
    }

    /// Changes what the status says is going on, not the state.
    fn set_trace(&self, trace: Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .trace = trace;
    }

    fn fail(&self, reason: String) -> String {
        if self.status().state != State::Failed {
            tracing::error!(connector = %self.config.name, %reason, "connector failed");
            self.metrics.error(ErrorKind::Source);
        }
        self.set_status(State::Failed, Some(reason.clone()));
        reason
    }

    /// Runs until `stop`: polls, produces and commits; after a failure waits for `restart`.
    pub async fn run(self: Arc<Self>) {
        let mut target = self.target.subscribe();
        loop {
            let Err(reason) = self.run_once(&mut target).await else {
                return;
            };
            self.fail(reason);
            tokio::select! {
                () = self.restart.notified() => {
                    tracing::info!(connector = %self.config.name, "restarting");
                    self.set_status(State::Running, None);
                }
                () = async { while !matches!(*target.borrow_and_update(), Target::Stopped) {
                    if target.changed().await.is_err() { break; }
                } } => return,
            }
        }
    }

    /// One life of the connector: start, then poll and commit side by side until stopped
    /// (Ok) or failed (Err, the reason).
    async fn run_once(
        self: &Arc<Self>,
        target: &mut watch::Receiver<Target>,
    ) -> Result<(), String> {
        let Some(recovered) = self.start(target).await? else {
            return Ok(());
        };
        let stored = recovered.stored.clone().unwrap_or_default();
        let resume_at = match (&stored.offset, &self.config.offset) {
            (Some(text), Some(spec)) => Some(
                SourceOffset::parse(spec.kind, &Value::String(text.clone())).map_err(|e| {
                    format!(
                        "the committed offset in {} does not fit http.response.record.offset.type: {e}",
                        self.config.offset_topic
                    )
                })?,
            ),
            _ => self.config.initial_offset.clone(),
        };
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = recovered.stored.clone();
        let stored = match recovered.stored {
            Some(_) => stored,
            // A first start: record where this connector begins before producing anything,
            // so a run killed before its first commit is recovered from here like any other.
            None => self.mark_start(&resume_at, &recovered.log_end).await?,
        };
        if let Some(at) = &resume_at {
            tracing::info!(connector = %self.config.name, offset = %at.text(), in_topic_uncommitted = recovered.produced_after_commit.values().sum::<usize>(), "resuming");
        }
        let (batches, pending) = mpsc::channel(PAGES_IN_FLIGHT);
        // The committing side runs as a task of its own, beside the polling side.
        let committing = tokio::spawn({
            let this = Arc::clone(self);
            async move {
                this.commit(pending, stored.positions, recovered.log_end)
                    .await
            }
        });
        let polled = self
            .poll(target, batches, resume_at, recovered.produced_after_commit)
            .await;
        let committed = committing
            .await
            .unwrap_or_else(|e| Err(format!("committing: {e}")));
        polled.and(committed)
    }

    /// Writes the first offset record (the initial offset, the target topic's log end now)
    /// and waits until the broker has it.
    async fn mark_start(
        &self,
        initial: &Option<SourceOffset>,
        log_end: &BTreeMap<i32, i64>,
    ) -> Result<StoredOffset, String> {
        let key = offset_key(&self.config.name, &self.config.topic);
        let start = StoredOffset {
            offset: initial.as_ref().map(|o| o.text().into_owned()),
            positions: log_end.clone(),
            committed_at_ms: StoredOffset::now_ms(),
        };
        let write = self.write_offset(&key, start.clone(), 0).await?;
        self.settle(write).await?;
        Ok(start)
    }

    /// Creates the topics and recovers, retrying while the broker is away; None if stopped.
    async fn start(
        &self,
        target: &mut watch::Receiver<Target>,
    ) -> Result<Option<Recovered>, String> {
        let mut delay = self.config.retry_backoff_initial;
        loop {
            let attempt = async {
                kafka::ensure_topics(&self.config, self.kafka_timeout).await?;
                let config = Arc::clone(&self.config);
                let timeout = self.kafka_timeout;
                tokio::task::spawn_blocking(move || kafka::recover(&config, timeout))
                    .await
                    .map_err(|e| StartError::Refused(format!("recovery: {e}")))?
            }
            .await;
            match attempt {
                Ok(recovered) => {
                    self.set_trace(None);
                    return Ok(Some(recovered));
                }
                Err(StartError::Refused(reason)) => return Err(reason),
                Err(unavailable @ StartError::Unavailable(_)) => {
                    let reason = unavailable.to_string();
                    self.metrics.error(ErrorKind::Kafka);
                    tracing::warn!(connector = %self.config.name, %reason, retry_in = %humantime::format_duration(delay), "broker not ready");
                    self.set_trace(Some(format!(
                        "{reason} (retrying in {})",
                        humantime::format_duration(delay)
                    )));
                    if !pause_point(target, delay).await {
                        return Ok(None);
                    }
                    delay = (delay * 2).min(self.config.retry_backoff_max);
                }
            }
        }
    }

    /// Waits while paused; false once stopped.
    async fn wait_while_paused(&self, target: &mut watch::Receiver<Target>) -> bool {
        loop {
            let now = *target.borrow_and_update();
            match now {
                Target::Running => {
                    if self.status().state == State::Paused {
                        self.set_status(State::Running, None);
                    }
                    return true;
                }
                Target::Stopped => return false,
                Target::Paused => {
                    self.set_status(State::Paused, None);
                    if target.changed().await.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    /// The polling side: fetch pages, hand their new records to the producer, one batch a
    /// page.
    async fn poll(
        self: &Arc<Self>,
        target: &mut watch::Receiver<Target>,
        batches: mpsc::Sender<Batch>,
        mut offset: Option<SourceOffset>,
        mut already_produced: HashMap<RecordBytes, usize>,
    ) -> Result<(), String> {
        loop {
            if !self.wait_while_paused(target).await {
                return Ok(());
            }
            // `${offset}` in the URL, and in a request body on every page, is the offset the
            // poll started from.
            let poll_offset = offset
                .as_ref()
                .map_or(String::new(), |o| o.text().into_owned());
            let first = config::expand_url(&self.config.url, &poll_offset);
            let url =
                Url::parse(&first).map_err(|e| self.fail(format!("request URL `{first}`: {e}")))?;
            // The poll's pages are fetched and read ahead in a task of their own, while the
            // ones before go to the producer; each goes to the committing side as soon as it
            // is produced, so a page being retried holds up no commit.
            let (pages, mut fetched) = mpsc::channel(PAGES_AHEAD);
            let _fetching = Fetching(tokio::spawn({
                let (this, mut target) = (Arc::clone(self), target.clone());
                async move {
                    this.fetch_pages(url, &poll_offset, &mut target, pages)
                        .await
                }
            }));
            while let Some(page) = fetched.recv().await {
                let page = match page {
                    Ok(page) => page,
                    Err(Interrupted::Stopped) => return Ok(()),
                    Err(Interrupted::Failed(reason)) => return Err(self.fail(reason)),
                };
                let page = page.page();
                self.metrics.polled(page.items);
                let batch = self
                    .produce(&page.records, &mut offset, &mut already_produced)
                    .await?;
                if batches.send(batch).await.is_err() {
                    // The committing side stopped; it reports why.
                    return Ok(());
                }
            }
            self.metrics.poll_succeeded();
            self.set_trace(None);
            if !pause_point(target, self.config.poll_interval).await {
                return Ok(());
            }
        }
    }

    /// Hands a page's new records to the producer: those after the current offset, less
    /// those a run that stopped before committing already produced. Advances the offset.
    async fn produce(
        &self,
        records: &[source::Record<'_>],
        offset: &mut Option<SourceOffset>,
        already_produced: &mut HashMap<RecordBytes, usize>,
    ) -> Result<Batch, String> {
        let mut batch = Batch {
            acks: Acks::new(),
            records: 0,
            offset: None,
            recovering: !already_produced.is_empty(),
        };
        let (mut seen, mut recovered) = (0, 0);
        // A record the source gives no time carries the time its page is produced: one
        // clock reading a page, not one per record.
        let produced_at = StoredOffset::now_ms();
        // The latest offset of the page so far, where it is past `offset`.
        let mut latest: Option<&SourceOffset> = None;
        for record in records {
            let current = latest.or(offset.as_ref());
            if let (Some(at), Some(current)) = (&record.offset, current)
                && !at.is_after(current)
            {
                seen += 1;
                continue;
            }
            // A record a stopped run produced after its last commit is matched once, by any
            // later poll that returns it (unpaged sources return it in a later poll).
            if !already_produced.is_empty() && recovers(already_produced, record) {
                recovered += 1;
            } else {
                self.enqueue(
                    &self.config.topic,
                    (
                        record.key.as_deref(),
                        record.value,
                        record.timestamp.unwrap_or(produced_at),
                    ),
                    &batch.acks,
                )
                .await
                .map_err(|e| self.fail(format!("cannot produce to {}: {e}", self.config.topic)))?;
                batch.records += 1;
            }
            if let Some(at) = &record.offset
                && current.is_none_or(|current| at.is_after(current))
            {
                latest = Some(at);
            }
        }
        if let Some(latest) = latest {
            *offset = Some(latest.clone());
        }
        self.metrics.skipped(Skip::Offset, seen);
        self.metrics.skipped(Skip::Recovered, recovered);
        batch.acks.seal(batch.records);
        self.metrics
            .uncommitted(i64::try_from(batch.records).unwrap_or(i64::MAX));
        batch.offset = offset.clone();
        Ok(batch)
    }

    /// The fetching side of one poll: each page from `url` on, read into records, handed to
    /// `pages` (at most [`PAGES_AHEAD`] waiting), until the last, a failure (handed on too) or
    /// a stop.
    async fn fetch_pages(
        &self,
        mut url: Url,
        poll_offset: &str,
        target: &mut watch::Receiver<Target>,
        pages: mpsc::Sender<Result<source::FetchedPage, Interrupted>>,
    ) {
        loop {
            let page = match self.fetch(&url, poll_offset, target).await {
                Ok(body) => {
                    source::FetchedPage::read(&self.config, &url, body).map_err(Interrupted::Failed)
                }
                Err(interrupted) => Err(interrupted),
            };
            let next = page.as_ref().ok().and_then(|page| page.page().next.clone());
            if pages.send(page).await.is_err() {
                return;
            }
            let Some(next) = next else {
                return;
            };
            if *target.borrow() == Target::Stopped {
                let _ = pages.send(Err(Interrupted::Stopped)).await;
                return;
            }
            url = next;
        }
    }

    /// One page request, retried with backoff while retrying can help.
    async fn fetch(
        &self,
        url: &Url,
        offset: &str,
        target: &mut watch::Receiver<Target>,
    ) -> Result<Vec<u8>, Interrupted> {
        let mut delay = self.config.retry_backoff_initial;
        let mut attempts: u32 = 0;
        loop {
            match self.source.attempt(&self.config, url, offset).await {
                Attempt::Body(body) => return Ok(body),
                Attempt::Fatal(reason) => return Err(Interrupted::Failed(reason)),
                Attempt::Retry { reason, after } => {
                    attempts += 1;
                    self.metrics.error(ErrorKind::HttpRetried);
                    let limit = self.config.retry_max_attempts;
                    if limit > 0 && attempts >= limit {
                        return Err(Interrupted::Failed(format!(
                            "gave up after {attempts} attempts: {reason}"
                        )));
                    }
                    let wait = after.unwrap_or(delay);
                    delay = (delay * 2).min(self.config.retry_backoff_max);
                    let trace = format!(
                        "{reason} (attempt {attempts}, retrying in {})",
                        humantime::format_duration(wait)
                    );
                    tracing::warn!(connector = %self.config.name, "{trace}");
                    self.set_trace(Some(trace));
                    if !pause_point(target, wait).await {
                        return Err(Interrupted::Stopped);
                    }
                }
            }
        }
    }

    /// Hands one record (key, value, timestamp) to the producer, answered with `acks`,
    /// waiting while its queue is full.
    async fn enqueue(
        &self,
        topic: &str,
        (key, value, timestamp): (Option<&[u8]>, &[u8], i64),
        acks: &Arc<Acks>,
    ) -> Result<(), KafkaError> {
        let mut record =
            BaseRecord::<[u8], [u8], Arc<Acks>>::with_opaque_to(topic, Arc::clone(acks))
                .payload(value)
                .timestamp(timestamp);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    self.metrics.error(ErrorKind::Kafka);
                    return Err(e);
                }
            }
        }
    }

    /// The committing side: waits for every record of each batch, in order, then stores the
    /// latest fully acknowledged batch's offset with the log end it reached. One offset write
    /// is in flight at a time; batches acknowledged meanwhile are covered by the next one.
    async fn commit(
        &self,
        mut pending: mpsc::Receiver<Batch>,
        recovered_positions: BTreeMap<i32, i64>,
        mut log_end: BTreeMap<i32, i64>,
    ) -> Result<(), String> {
        let key = offset_key(&self.config.name, &self.config.topic);
        // The offset record of the latest acknowledged batch, built when it is written.
        let record = |acknowledged: &Acknowledged, log_end: &BTreeMap<i32, i64>| StoredOffset {
            offset: acknowledged.offset.clone(),
            positions: if acknowledged.recovering {
                recovered_positions.clone()
            } else {
                log_end.clone()
            },
            committed_at_ms: StoredOffset::now_ms(),
        };
        // Acknowledged but not yet written.
        let mut acknowledged: Option<Acknowledged> = None;
        let mut writing: Option<OffsetWrite> = None;
        loop {
            let event = match writing.as_mut() {
                Some(write) => tokio::select! {
                    result = write.wait() => Event::Written(result),
                    batch = pending.recv() => Event::Batch(batch),
                },
                None => Event::Batch(pending.recv().await),
            };
            let batch = match event {
                Event::Written(result) => {
                    if let Some(write) = writing.take() {
                        self.written(write, result)?;
                    }
                    if let Some(acknowledged) = acknowledged.take() {
                        let stored = record(&acknowledged, &log_end);
                        writing = self
                            .write_if_moved(&key, stored, acknowledged.records)
                            .await?;
                    }
                    continue;
                }
                Event::Batch(None) => break,
                Event::Batch(Some(batch)) => batch,
            };
            let records = batch.records;
            let reached = self.delivered(batch.acks.wait().await, &self.config.topic)?;
            for (partition, end) in reached {
                let at = log_end.entry(partition).or_default();
                *at = (*at).max(end);
            }
            self.metrics.produced(records);
            let latest = Acknowledged {
                offset: batch.offset.map(|o| o.text().into_owned()),
                recovering: batch.recovering,
                records: acknowledged.take().map_or(0, |a| a.records) + records,
            };
            if writing.is_none() {
                let stored = record(&latest, &log_end);
                writing = self.write_if_moved(&key, stored, latest.records).await?;
            } else {
                acknowledged = Some(latest);
            }
        }
        // Stopping: the write in flight, then whatever was acknowledged after it.
        if let Some(write) = writing.take() {
            self.settle(write).await?;
        }
        if let Some(acknowledged) = acknowledged {
            let stored = record(&acknowledged, &log_end);
            if let Some(write) = self
                .write_if_moved(&key, stored, acknowledged.records)
                .await?
            {
                self.settle(write).await?;
            }
        }
        Ok(())
    }

    /// Starts writing `stored`, covering `covered` acknowledged records, unless nothing moved
    /// since the last commit (an idle poll: no record, the same offset and positions).
    async fn write_if_moved(
        &self,
        key: &[u8],
        stored: StoredOffset,
        covered: usize,
    ) -> Result<Option<OffsetWrite>, String> {
        let unchanged = covered == 0
            && self
                .committed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(|c| c.offset == stored.offset && c.positions == stored.positions);
        if unchanged {
            return Ok(None);
        }
        self.write_offset(key, stored, covered).await.map(Some)
    }

    async fn write_offset(
        &self,
        key: &[u8],
        stored: StoredOffset,
        covered: usize,
    ) -> Result<OffsetWrite, String> {
        let value = serde_json::to_vec(&stored).map_err(|e| format!("offset record: {e}"))?;
        let acks = Acks::new();
        let at = stored.committed_at_ms;
        self.enqueue(&self.config.offset_topic, (Some(key), &value, at), &acks)
            .await
            .map_err(|e| {
                format!(
                    "cannot store the offset in {}: {e}",
                    self.config.offset_topic
                )
            })?;
        acks.seal(1);
        Ok(OffsetWrite {
            acks,
            stored,
            covered,
        })
    }

    /// The broker's answer to records sent to `topic` (the log end they reached), or why
    /// the connector fails.
    fn delivered(&self, result: WriteResult, topic: &str) -> Result<BTreeMap<i32, i64>, String> {
        result.map_err(|e| {
            self.metrics.error(ErrorKind::Kafka);
            format!("the broker did not take a record for {topic}: {e}")
        })
    }

    /// Waits for an offset write and records it.
    async fn settle(&self, mut write: OffsetWrite) -> Result<(), String> {
        let result = write.wait().await;
        self.written(write, result)
    }

    /// Records a finished offset write: committed, or the reason the connector fails.
    fn written(&self, write: OffsetWrite, result: WriteResult) -> Result<(), String> {
        self.delivered(result, &self.config.offset_topic)?;
        self.metrics
            .uncommitted(-i64::try_from(write.covered).unwrap_or(i64::MAX));
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(write.stored);
        Ok(())
    }
}

/// The latest batch the broker acknowledged whose offset is not written yet.
struct Acknowledged {
    offset: Option<String>,
    recovering: bool,
    /// Records acknowledged since the last offset write.
    records: usize,
}

type WriteResult = Result<BTreeMap<i32, i64>, KafkaError>;

/// An offset record on its way to the broker.
struct OffsetWrite {
    acks: Arc<Acks>,
    stored: StoredOffset,
    covered: usize,
}

/// What the committing side waits for.
enum Event {
    Written(WriteResult),
    Batch(Option<Batch>),
}

impl OffsetWrite {
    async fn wait(&mut self) -> WriteResult {
        self.acks.wait().await
    }
}
