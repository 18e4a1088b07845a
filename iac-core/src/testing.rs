//! An in-process provider for tests of stack programs and of the engine itself.
//!
//! [`TestProvider`] keeps resources in memory, records every call with its start and end
//! time, tracks how many calls overlap, and can inject latency, failures, "crashes" (the call
//! takes effect and then never returns, like a process killed mid-call) and out-of-band
//! changes (drift). It handles any type token: register it for the types a test uses.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::property::PropertyMap;
use crate::provider::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, ImportRequest, Provider, ProviderError, ReadRequest, ReadResponse, UpdateRequest,
};

/// A provider call kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallKind {
    /// `create`.
    Create,
    /// `read`.
    Read,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Which call.
    pub kind: CallKind,
    /// The resource's name.
    pub name: String,
    /// When it started.
    pub start: Instant,
    /// When it returned (for a "crashed" call: when it took effect).
    pub end: Instant,
}

#[derive(Debug, Clone)]
struct Stored {
    type_token: String,
    name: String,
    inputs: Compact,
    outputs: Compact,
}

/// A property map kept as its JSON text. The provider stands in for a cloud, whose memory is
/// not the engine's: a resource costs it a few hundred bytes, not a map's nodes, so that a
/// benchmark's peak memory is the engine's own.
#[derive(Debug, Clone)]
struct Compact(Box<str>);

impl Compact {
    fn new(map: &PropertyMap) -> Self {
        Self(serde_json::to_string(map).unwrap_or_default().into())
    }

    fn map(&self) -> PropertyMap {
        serde_json::from_str(&self.0).unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    resources: BTreeMap<String, Stored>,
    calls: Vec<Call>,
    failures: HashMap<(CallKind, String), String>,
    crashes: BTreeSet<(CallKind, String)>,
    lost: BTreeSet<(CallKind, String)>,
    latency: HashMap<String, Duration>,
}

/// An in-memory provider with call recording and fault injection.
#[derive(Default)]
pub struct TestProvider {
    inner: Mutex<Inner>,
    default_latency: Duration,
    replace_keys: Vec<String>,
    delete_first_keys: Vec<String>,
    adopting: Vec<String>,
    next_id: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl std::fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProvider").finish_non_exhaustive()
    }
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl TestProvider {
    /// A provider with no latency, where every change is an in-place update.
    pub fn new() -> Self {
        Self::default()
    }

    /// A create of one of these names answers with the existing resource of that name, if
    /// there is one: as a provider that adopts what has the same natural key (an AWS
    /// security group rule's permission) does.
    pub fn adopting_on_create<I: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = I>,
    ) -> Self {
        self.adopting = names.into_iter().map(Into::into).collect();
        self
    }

    /// Every call takes this long.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.default_latency = latency;
        self
    }

    /// A change of one of these inputs needs replacement.
    pub fn replace_on<I: Into<String>>(mut self, keys: impl IntoIterator<Item = I>) -> Self {
        self.replace_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// A change of one of these inputs needs replacement, deleting the old resource first
    /// (as for a unique name).
    pub fn delete_first_on<I: Into<String>>(mut self, keys: impl IntoIterator<Item = I>) -> Self {
        self.delete_first_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls on resource `name` take this long.
    pub fn set_latency(&self, name: &str, latency: Duration) {
        self.lock().latency.insert(name.to_owned(), latency);
    }

    /// The next `kind` call on `name` is refused with `message`, changing nothing (and every
    /// later one, until cleared).
    pub fn fail(&self, kind: CallKind, name: &str, message: &str) {
        self.lock()
            .failures
            .insert((kind, name.to_owned()), message.to_owned());
    }

    /// Removes every injected failure.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// The `kind` call on `name` takes effect and then never returns.
    pub fn crash(&self, kind: CallKind, name: &str) {
        self.lock().crashes.insert((kind, name.to_owned()));
    }

    /// The next `kind` call on `name` takes effect, but its answer is lost: it fails with
    /// its outcome unknown.
    pub fn lose_answer(&self, kind: CallKind, name: &str) {
        self.lock().lost.insert((kind, name.to_owned()));
    }

    /// Removes every injected crash.
    pub fn clear_crashes(&self) {
        self.lock().crashes.clear();
    }

    /// Every call so far, in the order they started.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = self.lock().calls.clone();
        calls.sort_by_key(|c| c.start);
        calls
    }

    /// Names of the resources `kind` was called for, in call order.
    pub fn names(&self, kind: CallKind) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.name)
            .collect()
    }

    /// How many create, update and delete calls were made.
    pub fn mutations(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.kind != CallKind::Read)
            .count()
    }

    /// Forgets the recorded calls (not the resources).
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// The most calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// The names of the resources that exist now.
    pub fn existing(&self) -> BTreeSet<String> {
        self.lock()
            .resources
            .values()
            .map(|r| r.name.clone())
            .collect()
    }

    /// The inputs of the existing resource `name`.
    pub fn inputs_of(&self, name: &str) -> Option<PropertyMap> {
        self.lock()
            .resources
            .values()
            .find(|r| r.name == name)
            .map(|r| r.inputs.map())
    }

    /// Changes an input of `name` behind the engine's back (drift).
    pub fn tamper(&self, name: &str, key: &str, value: Value) {
        for r in self
            .lock()
            .resources
            .values_mut()
            .filter(|r| r.name == name)
        {
            for stored in [&mut r.inputs, &mut r.outputs] {
                let mut map = stored.map();
                map.insert(key.to_owned(), value.clone());
                *stored = Compact::new(&map);
            }
        }
    }

    /// Makes an object of `type_token` behind the engine's back, owned by no resource (its
    /// name is empty until it is imported): its id.
    pub fn create_out_of_band(&self, type_token: &str, inputs: PropertyMap) -> String {
        let id = format!("oob-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.lock().resources.insert(
            id.clone(),
            Stored {
                type_token: type_token.to_owned(),
                name: String::new(),
                outputs: Compact::new(&inputs),
                inputs: Compact::new(&inputs),
            },
        );
        id
    }

    /// Deletes `name` behind the engine's back.
    pub fn delete_out_of_band(&self, name: &str) {
        self.lock().resources.retain(|_, r| r.name != name);
    }

    async fn call<T>(
        &self,
        kind: CallKind,
        name: &str,
        effect: impl FnOnce(&mut Inner) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let start = Instant::now();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = self
            .lock()
            .latency
            .get(name)
            .copied()
            .unwrap_or(self.default_latency);
        if !latency.is_zero() {
            precise_sleep(latency).await;
        }
        let (result, crash) = {
            let mut inner = self.lock();
            let result = match inner.failures.get(&(kind, name.to_owned())) {
                Some(message) => {
                    Err(ProviderError::with_code("Injected", message.clone()).refused())
                }
                None => {
                    let result = effect(&mut inner);
                    match inner.lost.remove(&(kind, name.to_owned())) {
                        true => Err(ProviderError::with_code("Lost", "the answer was lost")),
                        false => result,
                    }
                }
            };
            inner.calls.push(Call {
                kind,
                name: name.to_owned(),
                start,
                end: Instant::now(),
            });
            (result, inner.crashes.contains(&(kind, name.to_owned())))
        };
        if crash {
            std::future::pending::<()>().await;
        }
        result
    }
}

/// Sleeps for `duration` with sub-millisecond precision (tokio's timer rounds up to whole
/// milliseconds, which would blur simulated latencies of a few milliseconds).
async fn precise_sleep(duration: Duration) {
    static TIMER: OnceLock<Arc<Timer>> = OnceLock::new();
    let timer = TIMER.get_or_init(|| {
        let timer = Arc::new(Timer::default());
        let thread_timer = Arc::clone(&timer);
        std::thread::spawn(move || thread_timer.run());
        timer
    });
    let (tx, rx) = oneshot::channel();
    let earliest = {
        let mut state = timer.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = state.next;
        state.next += 1;
        let at = Instant::now() + duration;
        let earliest = state
            .heap
            .peek()
            .is_none_or(|&Reverse((first, _))| at < first);
        state.heap.push(Reverse((at, id)));
        state.wakers.insert(id, tx);
        earliest
    };
    // The timer thread sleeps until its earliest deadline: only an earlier one wakes it.
    if earliest {
        timer.wake.notify_one();
    }
    let _ = rx.await;
}

#[derive(Default)]
struct Timer {
    state: Mutex<TimerState>,
    wake: Condvar,
}

#[derive(Default)]
struct TimerState {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: HashMap<u64, oneshot::Sender<()>>,
    next: u64,
}

impl Timer {
    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while let Some(&Reverse((at, id))) = state.heap.peek() {
                if at > now {
                    break;
                }
                state.heap.pop();
                if let Some(tx) = state.wakers.remove(&id) {
                    let _ = tx.send(());
                }
            }
            state = match state.heap.peek() {
                Some(&Reverse((at, _))) => {
                    let wait = at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// Outputs echo the inputs, plus a stable `arn` and a `generation` that every update bumps
/// (a computed output that changes, like a restarted instance's public IP).
fn outputs_for(id: &str, name: &str, inputs: &PropertyMap, generation: u64) -> PropertyMap {
    let mut outputs = inputs.clone();
    outputs.insert(
        "arn".to_owned(),
        Value::String(format!("arn:test:{name}:{id}")),
    );
    outputs.insert("generation".to_owned(), Value::from(generation));
    outputs
}

#[async_trait]
impl Provider for TestProvider {
    fn check(&self, request: &CheckRequest<'_>) -> Vec<CheckFailure> {
        match request.inputs.known("size").and_then(Value::as_i64) {
            Some(size) if size < 0 => vec![CheckFailure::new(
                "size",
                format!("must be 0 or more, got {size}"),
            )],
            _ => Vec::new(),
        }
    }

    /// Two relations, modelled on "a subnet lies inside its network" and "key names are
    /// unique": a resource whose `parent` input references another resource must not have a
    /// larger `size` than that resource; no two resources may share a `unique_name`.
    fn check_related(&self, resources: &[CheckRequest<'_>]) -> Vec<(String, CheckFailure)> {
        let mut failures = Vec::new();
        let size = |r: &CheckRequest<'_>| r.inputs.known("size").and_then(Value::as_i64);
        for r in resources {
            let Some(parent) = r.references.get("parent") else {
                continue;
            };
            let parent_request = resources.iter().find(|p| p.name == parent.resource);
            if let (Some(own), Some(limit)) = (size(r), parent_request.and_then(size))
                && own > limit
            {
                failures.push((
                    r.name.to_owned(),
                    CheckFailure::new(
                        "size",
                        format!("{own} does not fit in `{}` (size {limit})", parent.resource),
                    ),
                ));
            }
        }
        let mut seen: HashMap<&Value, &str> = HashMap::new();
        for r in resources {
            if let Some(unique) = r.inputs.known("unique_name")
                && let Some(first) = seen.insert(unique, r.name)
            {
                failures.push((
                    r.name.to_owned(),
                    CheckFailure::new(
                        "unique_name",
                        format!("{unique} is already used by `{first}`"),
                    ),
                ));
            }
        }
        failures
    }

    fn diff(&self, request: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        let mut replace: Vec<&str> = self.replace_keys.iter().map(String::as_str).collect();
        replace.extend(self.delete_first_keys.iter().map(String::as_str));
        let mut response = DiffResponse::from_keys(request.changed_keys(), &replace);
        response.delete_before_replace = response
            .changes
            .iter()
            .any(|c| self.delete_first_keys.contains(&c.key));
        Ok(response)
    }

    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        let id = format!("id-{}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        let adopts = self.adopting.iter().any(|n| n == request.name);
        self.call(CallKind::Create, request.name, |inner| {
            if adopts
                && let Some((id, found)) =
                    inner.resources.iter().find(|(_, r)| r.name == request.name)
            {
                return Ok(CreateResponse {
                    id: id.clone(),
                    outputs: found.outputs.map(),
                });
            }
            let outputs = outputs_for(&id, request.name, request.inputs, 1);
            inner.resources.insert(
                id.clone(),
                Stored {
                    type_token: request.type_token.to_owned(),
                    name: request.name.to_owned(),
                    inputs: Compact::new(request.inputs),
                    outputs: Compact::new(&outputs),
                },
            );
            Ok(CreateResponse { id, outputs })
        })
        .await
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        self.call(CallKind::Read, request.name, |inner| {
            let found = match request.id {
                Some(id) => inner.resources.get(id).map(|r| (id.to_owned(), r)),
                None => inner
                    .resources
                    .iter()
                    .find(|(_, r)| r.name == request.name && r.type_token == request.type_token)
                    .map(|(id, r)| (id.clone(), r)),
            };
            if let Some((id, r)) = found {
                return Ok(Some(ReadResponse {
                    id,
                    inputs: Some(r.inputs.map()),
                    outputs: r.outputs.map(),
                }));
            }
            // Data sources: `test:Lookup` finds `<query>-found` unless the query is "missing".
            if request.id.is_none() && request.type_token.ends_with("Lookup") {
                let query = request
                    .inputs
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if query != "missing" {
                    let mut outputs = PropertyMap::new();
                    outputs.insert("value".to_owned(), Value::String(format!("{query}-found")));
                    return Ok(Some(ReadResponse {
                        id: format!("lookup-{query}"),
                        inputs: None,
                        outputs,
                    }));
                }
            }
            Ok(None)
        })
        .await
    }

    /// An object of the type by id, refused when another resource owns it (its name);
    /// it then belongs to `name`.
    async fn import(
        &self,
        request: &ImportRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        self.call(CallKind::Read, request.name, |inner| {
            let Some(r) = inner
                .resources
                .get_mut(request.id)
                .filter(|r| r.type_token == request.type_token)
            else {
                return Ok(None);
            };
            if !r.name.is_empty() && r.name != request.name {
                return Err(ProviderError::new(format!(
                    "`{}` belongs to `{}`",
                    request.id, r.name
                ))
                .refused());
            }
            request.name.clone_into(&mut r.name);
            Ok(Some(ReadResponse {
                id: request.id.to_owned(),
                inputs: Some(r.inputs.map()),
                outputs: r.outputs.map(),
            }))
        })
        .await
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        self.call(CallKind::Update, request.name, |inner| {
            let r = inner.resources.get_mut(request.id).ok_or_else(|| {
                ProviderError::with_code("NotFound", format!("{} does not exist", request.id))
            })?;
            let generation = r
                .outputs
                .map()
                .get("generation")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                + 1;
            let outputs = outputs_for(request.id, request.name, request.new_inputs, generation);
            r.inputs = Compact::new(request.new_inputs);
            r.outputs = Compact::new(&outputs);
            Ok(outputs)
        })
        .await
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        self.call(CallKind::Delete, request.name, |inner| {
            inner.resources.remove(request.id);
            Ok(())
        })
        .await
    }
}
