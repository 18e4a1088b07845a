//! # iac-state-s3
//!
//! Stack state in an S3 bucket, for a team sharing its environments: `S3Backend` keeps, under
//! `s3://<bucket>/<prefix>/<stack>/`,
//!
//! - `state.json`: the snapshot, replaced whole (an object PUT is atomic: a reader sees the
//!   old snapshot or the new one, never a torn one);
//! - `journal/<serial>.json`: one object per durable batch since the snapshot (an object store
//!   cannot append). Each is written with `If-None-Match: *`, so a batch is never overwritten:
//!   a retry after a lost response finds the object it wrote (the same bytes: done), and a
//!   second writer that ignored the lock is refused. Loading replays the batches newer than
//!   the snapshot in serial order; saving a snapshot then deletes the batches it includes
//!   (a crash between leaves batches the snapshot already has, which loading skips);
//! - `lock.json`: the lock, taken by a conditional write (`If-None-Match: *`, as Terraform's
//!   S3 backend with `use_lockfile`) holding its holder (pid, host, operation, since), deleted
//!   when released. A lock whose holder ran on this host and is gone is taken over; one taken
//!   on another host stays until it is broken (`Engine::break_lock`).
//!
//! Nothing relies on bucket versioning (turn it on anyway: it keeps every earlier snapshot).
//! The backend's calls are blocking, as [`StateBackend`]'s are: they run on a runtime of its
//! own, so it can be used from any context.
//!
//! ```no_run
//! # fn run(providers: iac_core::Providers) -> Result<(), iac_core::state::StateError> {
//! let backend = iac_state_s3::S3Backend::connect("s3://team-state/kafka")?;
//! let engine = iac_core::Engine::new(providers, backend);
//! # Ok(()) }
//! ```

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use iac_core::state::{
    Checkpoint, JournalBatch, LockInfo, Mutation, StateBackend, StateError, StateLock,
};

/// How many journal objects one delete request removes (S3's limit is 1000).
const DELETE_CHUNK: usize = 1000;

/// Stack state in an S3 bucket (see the crate documentation for its layout).
pub struct S3Backend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Backend({})", self.location())
    }
}

struct Inner {
    client: Client,
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    runtime: Runtime,
    /// Stacks whose snapshot exists (seen by a load or written by a save): an append to
    /// another writes a snapshot first.
    snapshots: Mutex<std::collections::HashSet<String>>,
}

/// The backend's own runtime; shut down without waiting, so dropping the backend is fine
/// inside another runtime.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// `s3://bucket/prefix` split into the bucket and the prefix (empty, or ending in `/`).
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`{url}` is not an S3 location: write s3://<bucket>/<prefix>"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!(
            "`{url}` names no bucket: write s3://<bucket>/<prefix>"
        ));
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

impl S3Backend {
    /// Connects to `url` (`s3://<bucket>/<prefix>`) with the standard AWS configuration
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials, profiles), and checks that the bucket
    /// exists and may be listed.
    pub fn connect(url: &str) -> Result<Self, StateError> {
        let (bucket, prefix) = parse_url(url).map_err(|reason| StateError::StoreRefused {
            location: url.to_owned(),
            reason,
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("iac-state-s3")
            .enable_all()
            .build()
            .map_err(|e| StateError::Store {
                location: url.to_owned(),
                reason: format!("cannot start its runtime: {e}"),
            })?;
        let config = run_on(
            &runtime,
            aws_config::defaults(aws_config::BehaviorVersion::latest()).load(),
        )
        .map_err(|reason| StateError::Store {
            location: url.to_owned(),
            reason,
        })?;
        let client = Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                // The emulator and most S3-compatible stores want path-style addresses.
                .force_path_style(true)
                .build(),
        );
        let backend = Self {
            inner: Arc::new(Inner {
                client,
                bucket,
                prefix,
                runtime: Runtime(Some(runtime)),
                snapshots: Mutex::default(),
            }),
        };
        backend.inner.check_bucket()?;
        Ok(backend)
    }

    /// Where the state is: `s3://<bucket>/<prefix>`.
    pub fn location(&self) -> String {
        self.inner.url(&self.inner.prefix)
    }
}

/// Runs `future` on `runtime` and waits for it from whatever thread this is (a runtime's
/// worker included: the wait blocks, as the file backend's disk I/O does).
fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| "the S3 client's runtime stopped".to_owned())
}

/// What a failed request means for the user.
enum Failure {
    /// The object is not there.
    Missing,
    /// A conditional write found the object there.
    Exists,
    /// Someone must act (with what to do).
    Refused(String),
    /// Anything else.
    Failed(String),
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static>(
    error: &SdkError<E, HttpResponse>,
    bucket: &str,
) -> Failure {
    let status = match error {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        _ => None,
    };
    let code = error.code().unwrap_or_default();
    match (code, status) {
        ("NoSuchKey" | "NotFound", _) | (_, Some(404)) if code != "NoSuchBucket" => {
            Failure::Missing
        }
        ("PreconditionFailed", _) | (_, Some(412)) => Failure::Exists,
        ("NoSuchBucket", _) => Failure::Refused(format!(
            "the bucket `{bucket}` does not exist: create it (`aws s3 mb s3://{bucket}`), or name another in --backend / IAC_BACKEND"
        )),
        (
            "AccessDenied" | "AllAccessDisabled" | "InvalidAccessKeyId" | "SignatureDoesNotMatch",
            _,
        )
        | (_, Some(403)) => Failure::Refused(format!(
            "access is denied ({}): the credentials need s3:ListBucket on `{bucket}` and s3:GetObject, s3:PutObject and s3:DeleteObject on the prefix",
            if code.is_empty() { "403" } else { code }
        )),
        _ => Failure::Failed(match error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "S3 cannot be reached ({}): check AWS_ENDPOINT_URL and the network",
                DisplayErrorContext(error)
            ),
            _ => format!(
                "{}{}",
                if code.is_empty() {
                    "the request failed"
                } else {
                    code
                },
                error
                    .message()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        }),
    }
}

impl Inner {
    /// The object `key` (a full key) as a URL: what errors name.
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// [`Inner::url`] as the path a [`StateError::Corrupt`] names.
    fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.url(key))
    }

    fn key(&self, stack: &str, object: &str) -> String {
        format!("{}{stack}/{object}", self.prefix)
    }

    fn error(&self, key: &str, failure: Failure) -> StateError {
        let location = self.url(key);
        match failure {
            Failure::Refused(reason) => StateError::StoreRefused { location, reason },
            Failure::Missing => StateError::Store {
                location,
                reason: "the object went away during the request (another run changed the state?): run the command again".to_owned(),
            },
            Failure::Exists => StateError::Store {
                location,
                reason: "the object was written by another run during the request: run the command again".to_owned(),
            },
            Failure::Failed(reason) => StateError::Store { location, reason },
        }
    }

    fn run<T: Send + 'static>(
        &self,
        key: &str,
        future: impl std::future::Future<Output = Result<T, Failure>> + Send + 'static,
    ) -> Result<T, StateError> {
        let runtime = self.runtime.0.as_ref().ok_or_else(|| StateError::Store {
            location: self.url(key),
            reason: "the backend is shut down".to_owned(),
        })?;
        run_on(runtime, future)
            .map_err(Failure::Failed)
            .and_then(|result| result)
            .map_err(|failure| self.error(key, failure))
    }

    fn check_bucket(&self) -> Result<(), StateError> {
        let (client, bucket, prefix) = (
            self.client.clone(),
            self.bucket.clone(),
            self.prefix.clone(),
        );
        self.run(&self.prefix, async move {
            client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(prefix)
                .max_keys(1)
                .send()
                .await
                .map(drop)
                .map_err(|e| classify(&e, &bucket))
        })
    }

    /// The object's bytes, or `None` when it is not there.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        let (client, bucket, owned) = (self.client.clone(), self.bucket.clone(), key.to_owned());
        self.run(key, async move {
            let answer = match client.get_object().bucket(&bucket).key(owned).send().await {
                Ok(answer) => answer,
                Err(e) => {
                    return match classify(&e, &bucket) {
                        Failure::Missing => Ok(None),
                        other => Err(other),
                    };
                }
            };
            let body = answer
                .body
                .collect()
                .await
                .map_err(|e| Failure::Failed(format!("reading the object: {e}")))?;
            Ok(Some(body.into_bytes().to_vec()))
        })
    }

    /// Writes the object; with `only_new`, only if it is not there (`false` when it was).
    fn put(&self, key: &str, bytes: Vec<u8>, only_new: bool) -> Result<bool, StateError> {
        let (client, bucket, owned) = (self.client.clone(), self.bucket.clone(), key.to_owned());
        self.run(key, async move {
            let mut request = client
                .put_object()
                .bucket(&bucket)
                .key(owned)
                .content_type("application/json")
                .body(ByteStream::from(bytes));
            if only_new {
                request = request.if_none_match("*");
            }
            match request.send().await {
                Ok(_) => Ok(true),
                Err(e) => match classify(&e, &bucket) {
                    Failure::Exists if only_new => Ok(false),
                    other => Err(other),
                },
            }
        })
    }

    fn delete(&self, key: &str) -> Result<(), StateError> {
        let (client, bucket, owned) = (self.client.clone(), self.bucket.clone(), key.to_owned());
        self.run(key, async move {
            match client
                .delete_object()
                .bucket(&bucket)
                .key(owned)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => match classify(&e, &bucket) {
                    Failure::Missing => Ok(()),
                    other => Err(other),
                },
            }
        })
    }

    /// Every key under `prefix`, in order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StateError> {
        let (client, bucket, owned) = (self.client.clone(), self.bucket.clone(), prefix.to_owned());
        self.run(prefix, async move {
            let mut keys = Vec::new();
            let mut pages = client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(owned)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify(&e, &bucket))?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
            }
            keys.sort();
            Ok(keys)
        })
    }

    fn delete_all(&self, keys: Vec<String>) -> Result<(), StateError> {
        for chunk in keys.chunks(DELETE_CHUNK) {
            let objects: Vec<_> = chunk
                .iter()
                .filter_map(|key| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .ok()
                })
                .collect();
            let delete = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.error(&chunk[0], Failure::Failed(e.to_string())))?;
            let (client, bucket) = (self.client.clone(), self.bucket.clone());
            self.run(&chunk[0], async move {
                client
                    .delete_objects()
                    .bucket(&bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(&e, &bucket))
            })?;
        }
        Ok(())
    }

    fn journal_prefix(&self, stack: &str) -> String {
        self.key(stack, "journal/")
    }

    /// The serial a journal object records (its name: `journal/<serial>.json`).
    fn serial_of(key: &str) -> Option<u64> {
        key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let key = self.key(stack, "lock.json");
        Ok(self
            .get(&key)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Writes the lock object for this process, unless one is there (`false`: there is).
    fn try_lock(&self, stack: &str, operation: &str) -> Result<bool, StateError> {
        let key = self.key(stack, "lock.json");
        let info = LockInfo::this_process(operation);
        let bytes = serde_json::to_vec(&info)
            .map_err(|e| self.error(&key, Failure::Failed(e.to_string())))?;
        self.put(&key, bytes, true)
    }
}

/// Whether the process a lock names still runs on this host: its pid exists and it started
/// no later than the lock was taken (a pid reused since is another process).
fn holder_alive(holder: &LockInfo) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", holder.pid)) else {
        return false;
    };
    let started = process_start(&stat);
    let since = humantime::parse_rfc3339(&holder.since).ok();
    match (started, since) {
        (Some(started), Some(since)) => started <= since + std::time::Duration::from_secs(1),
        _ => true,
    }
}

/// Whether a lock was left by a run on this host that is gone: its to take over.
fn left_by_a_gone_run(holder: &LockInfo) -> bool {
    holder.is_on_this_host() && !holder_alive(holder)
}

/// When the process whose `/proc/<pid>/stat` is `stat` started.
fn process_start(stat: &str) -> Option<SystemTime> {
    let ticks: u64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(boot * 1000 + ticks * 10))
}

impl StateBackend for S3Backend {
    fn load(&self, stack: &str) -> Result<Option<Checkpoint>, StateError> {
        let inner = &self.inner;
        let key = inner.key(stack, "state.json");
        let journal = inner.list(&inner.journal_prefix(stack))?;
        let Some(bytes) = inner.get(&key)? else {
            if let Some(first) = journal.first() {
                return Err(StateError::Corrupt {
                    path: inner.path(first),
                    reason: "a journal exists without its snapshot".to_owned(),
                });
            }
            return Ok(None);
        };
        let path = inner.path(&key);
        let text = String::from_utf8(bytes).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut checkpoint = Checkpoint::from_snapshot(stack, &text, &path)?;
        inner.snapshots().insert(stack.to_owned());
        for object in journal {
            if Inner::serial_of(&object).is_none_or(|serial| serial <= checkpoint.serial) {
                continue;
            }
            let Some(bytes) = inner.get(&object)? else {
                continue;
            };
            let batch: JournalBatch =
                serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    path: inner.path(&object),
                    reason: e.to_string(),
                })?;
            for mutation in &batch.mutations {
                checkpoint.apply(mutation);
            }
            checkpoint.serial = batch.serial;
        }
        Ok(Some(checkpoint))
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        let inner = &self.inner;
        let stack = &checkpoint.stack;
        let key = inner.key(stack, "state.json");
        let bytes = serde_json::to_vec(checkpoint)
            .map_err(|e| inner.error(&key, Failure::Failed(e.to_string())))?;
        inner.put(&key, bytes, false)?;
        inner.snapshots().insert(stack.clone());
        let included: Vec<String> = inner
            .list(&inner.journal_prefix(stack))?
            .into_iter()
            .filter(|k| Inner::serial_of(k).is_some_and(|s| s <= checkpoint.serial))
            .collect();
        inner.delete_all(included)
    }

    fn append(&self, checkpoint: &Checkpoint, batch: &[Mutation]) -> Result<(), StateError> {
        let inner = &self.inner;
        if !inner.snapshots().contains(&checkpoint.stack) {
            return self.save(checkpoint);
        }
        let key = format!(
            "{}{:020}.json",
            inner.journal_prefix(&checkpoint.stack),
            checkpoint.serial
        );
        let bytes = JournalBatch::encode(checkpoint.serial, batch)
            .map_err(|e| inner.error(&key, Failure::Failed(e.to_string())))?;
        if inner.put(&key, bytes.clone(), true)? {
            return Ok(());
        }
        // The batch's object is there: this write's own (a retry after a lost response), or
        // another writer's that ignored the lock.
        match inner.get(&key)? {
            Some(found) if found == bytes => Ok(()),
            _ => Err(StateError::Corrupt {
                path: inner.path(&key),
                reason: "another writer stored this batch while this run held the lock: stop every run of the stack, then run it again".to_owned(),
            }),
        }
    }

    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
        let inner = &self.inner;
        if !inner.try_lock(stack, operation)? {
            // Taken: by a run on this host that is gone, it is taken over (once).
            match inner.read_lock(stack)? {
                Some(holder) if !left_by_a_gone_run(&holder) => {
                    return Err(StateError::Locked {
                        stack: stack.to_owned(),
                        holder,
                    });
                }
                _ => {
                    inner.delete(&inner.key(stack, "lock.json"))?;
                    if !inner.try_lock(stack, operation)? {
                        let holder = inner.read_lock(stack)?.unwrap_or_else(LockInfo::unknown);
                        return Err(StateError::Locked {
                            stack: stack.to_owned(),
                            holder,
                        });
                    }
                }
            }
        }
        let inner = Arc::clone(&self.inner);
        let key = inner.key(stack, "lock.json");
        Ok(StateLock::new(move || {
            let _ = inner.delete(&key);
        }))
    }

    fn take_over(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let inner = &self.inner;
        match inner.read_lock(stack)? {
            Some(holder) if left_by_a_gone_run(&holder) => {
                inner.delete(&inner.key(stack, "lock.json"))?;
                Ok(Some(holder))
            }
            _ => Ok(None),
        }
    }

    fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let inner = &self.inner;
        let holder = inner.read_lock(stack)?;
        if let Some(holder) = &holder
            && holder.is_on_this_host()
            && holder_alive(holder)
        {
            return Err(StateError::HolderAlive {
                stack: stack.to_owned(),
                holder: holder.clone(),
            });
        }
        inner.delete(&inner.key(stack, "lock.json"))?;
        Ok(holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed_or_refused_with_the_form_to_write() {
        assert_eq!(
            parse_url("s3://team/kafka/"),
            Ok(("team".to_owned(), "kafka/".to_owned()))
        );
        assert_eq!(
            parse_url("s3://team"),
            Ok(("team".to_owned(), String::new()))
        );
        assert_eq!(
            parse_url("team/kafka"),
            Err("`team/kafka` is not an S3 location: write s3://<bucket>/<prefix>".to_owned())
        );
        assert_eq!(
            parse_url("s3:///kafka"),
            Err("`s3:///kafka` names no bucket: write s3://<bucket>/<prefix>".to_owned())
        );
    }

    #[test]
    fn a_journal_object_names_its_serial() {
        assert_eq!(
            Inner::serial_of("kafka/dev/journal/00000000000000000042.json"),
            Some(42)
        );
        assert_eq!(Inner::serial_of("kafka/dev/journal/notes.txt"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_lock_older_than_a_pid_is_not_its_holder() {
        let me = LockInfo::this_process("apply");
        assert!(holder_alive(&me));
        let reused = LockInfo {
            since: "2000-01-01T00:00:00Z".to_owned(),
            ..me
        };
        assert!(!holder_alive(&reused));
        let gone = LockInfo {
            pid: u32::MAX,
            ..LockInfo::this_process("apply")
        };
        assert!(!holder_alive(&gone));
    }
}

/// For tests and benchmarks against an S3 emulator: a client as the backend makes its own,
/// and a bucket of one's own.
pub mod testing {
    /// An S3 client with the standard AWS configuration (or `endpoint`), path-style, in
    /// `eu-central-1` unless configured otherwise.
    pub async fn client(endpoint: Option<&str>) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"));
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    /// Creates the bucket `name` in `eu-central-1`.
    pub async fn create_bucket(
        client: &aws_sdk_s3::Client,
        name: &str,
    ) -> Result<
        (),
        aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::create_bucket::CreateBucketError>,
    > {
        let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuCentral1)
            .build();
        client
            .create_bucket()
            .bucket(name)
            .create_bucket_configuration(location)
            .send()
            .await
            .map(drop)
    }
}
