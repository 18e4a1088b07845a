//! The state writer: one thread that applies mutations in order and persists them in
//! batches (group commit), acknowledging each caller only once its batch is durable.
//!
//! Many steps finishing at once share one fsync; a step that must record a pending operation
//! before calling its provider waits for exactly that. A batch nobody waits for (a step's
//! result) is written at once but flushed with the next batch a step waits for, or within
//! [`FLUSH_WITHIN`]: a chain of steps pays one flush per step, not two. Until then an
//! operating-system crash can lose it, never a process crash; its pending operation, durable
//! before the provider was called, is then resolved by the next run as after any crash. After a failed write the writer refuses
//! every later batch, so the engine never runs ahead of what is on disk.
//!
//! Callers hand it mutations in plaintext: the writer seals every secret value (with the
//! stack's cipher) before a mutation leaves the caller, so nothing unsealed reaches a backend.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Checkpoint, Mutation, StateBackend, StateError};
use crate::secrets::Cipher;

/// A batch nobody waited for is flushed at the latest this long after it was written (or by
/// the next batch a step waits for, or the final snapshot, whichever comes first).
const FLUSH_WITHIN: Duration = Duration::from_millis(100);

type Ack = oneshot::Sender<Result<(), StateError>>;
/// Mutations to persist, with the acknowledgement a committing caller waits for.
type Batch = (Vec<Mutation>, Option<Ack>);

fn gone(reason: &str) -> StateError {
    StateError::WriterGone {
        reason: reason.to_owned(),
    }
}

pub(crate) struct StateWriter {
    tx: Option<mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<Result<Checkpoint, StateError>>>,
    stack: String,
    cipher: Option<Cipher>,
}

impl StateWriter {
    /// A writer continuing from `checkpoint` as stored (its secrets sealed), sealing with
    /// `cipher` (none: the stack has no secrets yet, and a secret value is refused).
    pub(crate) fn start(
        backend: Arc<dyn StateBackend>,
        mut checkpoint: Checkpoint,
        cipher: Option<Cipher>,
    ) -> Self {
        let stack = checkpoint.stack.clone();
        let (tx, rx) = mpsc::channel::<Batch>();
        let thread = std::thread::spawn(move || {
            let mut failed: Option<Arc<StateError>> = None;
            let mut dirty = false;
            // Since when batches nobody waited for are written and not yet flushed.
            let mut unsynced: Option<Instant> = None;
            loop {
                let flush_in = unsynced.map(|since| FLUSH_WITHIN.saturating_sub(since.elapsed()));
                let first = match flush_in.filter(|_| failed.is_none()) {
                    Some(left) => match rx.recv_timeout(left) {
                        Ok(first) if !left.is_zero() => first,
                        Ok(first) => {
                            // Overdue while batches keep coming: flush before the next one.
                            flush(backend.as_ref(), &checkpoint.stack, &mut failed);
                            unsynced = None;
                            first
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            flush(backend.as_ref(), &checkpoint.stack, &mut failed);
                            unsynced = None;
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                    None => match rx.recv() {
                        Ok(first) => first,
                        Err(mpsc::RecvError) => break,
                    },
                };
                dirty = true;
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                // Only a commit waits: a batch of sends alone is flushed by the next one.
                let awaited = batch.iter().any(|(_, ack)| ack.is_some());
                let result = match &failed {
                    Some(first) => Err(Arc::clone(first)),
                    None => {
                        let mutations: Vec<Mutation> =
                            batch.iter_mut().flat_map(|(m, _)| m.drain(..)).collect();
                        for m in &mutations {
                            checkpoint.apply(m);
                        }
                        checkpoint.serial += 1;
                        let written = if awaited {
                            backend.append(&checkpoint, &mutations)
                        } else {
                            backend.append_unsynced(&checkpoint, &mutations)
                        };
                        unsynced = if awaited {
                            None
                        } else {
                            unsynced.or_else(|| Some(Instant::now()))
                        };
                        written.map_err(Arc::new)
                    }
                };
                if let Err(first) = &result {
                    failed = Some(Arc::clone(first));
                }
                for ack in batch.into_iter().filter_map(|(_, ack)| ack) {
                    let _ = ack.send(result.clone().map_err(StateError::WriteFailed));
                }
            }
            match failed {
                Some(first) => Err(StateError::WriteFailed(first)),
                None if dirty => backend.save(&checkpoint).map(|()| checkpoint),
                None => Ok(checkpoint),
            }
        });
        Self {
            tx: Some(tx),
            thread: Some(thread),
            stack,
            cipher,
        }
    }

    fn enqueue(&self, mut mutations: Vec<Mutation>, ack: Option<Ack>) -> Result<(), StateError> {
        for m in &mut mutations {
            m.seal(&self.stack, self.cipher.as_ref())?;
        }
        self.tx
            .as_ref()
            .ok_or_else(|| gone("already finished"))?
            .send((mutations, ack))
            .map_err(|_| gone("its thread ended"))
    }

    /// Persists `mutations` (sealed); returns once they are durable.
    pub(crate) async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StateError> {
        let (ack, done) = oneshot::channel();
        self.enqueue(mutations, Some(ack))?;
        done.await.map_err(|_| gone("its thread ended"))?
    }

    /// Queues `mutations` without waiting for them to be durable. Batches are written in
    /// order, so anything committed later is durable only once these are; a failure here
    /// fails every later commit and [`StateWriter::finish`].
    pub(crate) fn send(&self, mutations: Vec<Mutation>) -> Result<(), StateError> {
        self.enqueue(mutations, None)
    }

    /// Stops the writer and compacts: if anything was committed, the final checkpoint is
    /// saved as one snapshot (and the journal removed).
    pub(crate) async fn finish(mut self) -> Result<Checkpoint, StateError> {
        drop(self.tx.take());
        let thread = self.thread.take();
        tokio::task::spawn_blocking(move || match thread {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(gone("its thread panicked"))),
            None => Err(gone("already finished")),
        })
        .await
        .unwrap_or_else(|e| Err(gone(&e.to_string())))
    }
}

/// Flushes what was written unflushed; a failure fails the writer.
fn flush(backend: &dyn StateBackend, stack: &str, failed: &mut Option<Arc<StateError>>) {
    if let Err(e) = backend.sync(stack) {
        *failed = Some(Arc::new(e));
    }
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::secrets::{Passphrase, SecretsError};
    use crate::stack::NodeKind;
    use crate::state::{FileBackend, PendingKind, PendingOperation, ResourceState};

    const SECRET: &str = "hunter2-writer";

    fn secret_keys() -> BTreeSet<String> {
        BTreeSet::from(["password".to_owned()])
    }

    /// A create announced and made, and the stack's outputs, each carrying the secret.
    fn mutations() -> Vec<Mutation> {
        let inputs: crate::property::PropertyMap = [("password".to_owned(), json!(SECRET))]
            .into_iter()
            .collect();
        vec![
            Mutation::Begin {
                pending: PendingOperation {
                    op_id: 1,
                    kind: PendingKind::Create,
                    name: "db".to_owned(),
                    type_token: "test:Thing".to_owned(),
                    id: None,
                    inputs: inputs.clone(),
                    secrets: secret_keys(),
                    dependencies: Vec::new(),
                    started: "2026-01-01T00:00:00Z".to_owned(),
                },
            },
            Mutation::Put {
                resource: ResourceState {
                    name: "db".to_owned(),
                    type_token: "test:Thing".to_owned(),
                    kind: NodeKind::Resource,
                    id: "db-1".to_owned(),
                    inputs: inputs.clone(),
                    outputs: inputs.clone(),
                    dependencies: Vec::new(),
                    secrets: secret_keys(),
                    protect: false,
                    delete_pending: false,
                },
                end: Some(1),
            },
            Mutation::Outputs {
                outputs: inputs,
                secret_outputs: secret_keys(),
            },
        ]
    }

    fn on_disk(dir: &std::path::Path) -> String {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default())
            .collect()
    }

    #[tokio::test]
    async fn every_secret_a_mutation_carries_is_sealed_before_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn StateBackend> = Arc::new(FileBackend::new(dir.path()));
        let (cipher, _) = Cipher::create(&Passphrase::new("pass"), "dev").unwrap();
        let writer = StateWriter::start(Arc::clone(&backend), Checkpoint::new("dev"), Some(cipher));
        writer.commit(mutations()).await.unwrap();
        let journaled = on_disk(dir.path());
        assert!(
            journaled.contains("enc:v1:") && !journaled.contains(SECRET),
            "{journaled}"
        );
        let stored = writer.finish().await.unwrap();
        assert_ne!(
            stored.resource("db").unwrap().inputs["password"],
            json!(SECRET)
        );
        let compacted = on_disk(dir.path());
        assert!(
            compacted.contains("enc:v1:") && !compacted.contains(SECRET),
            "{compacted}"
        );
    }

    #[tokio::test]
    async fn without_a_cipher_a_secret_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn StateBackend> = Arc::new(FileBackend::new(dir.path()));
        let writer = StateWriter::start(backend, Checkpoint::new("dev"), None);
        let err = writer.commit(mutations()).await.unwrap_err();
        assert!(
            matches!(err, StateError::Secrets(SecretsError::NoPassphrase { .. })),
            "{err}"
        );
        writer.finish().await.unwrap();
        assert!(!on_disk(dir.path()).contains(SECRET));
    }
}

#[cfg(test)]
mod flush_tests {
    use std::sync::Mutex;

    use super::*;
    use crate::state::{FileBackend, LockInfo, StateLock};

    /// A file backend that counts how each batch was written, and the flushes asked for.
    #[derive(Default)]
    struct Counts {
        flushed: usize,
        unflushed: usize,
        syncs: usize,
    }

    struct Counting {
        files: FileBackend,
        counts: Mutex<Counts>,
    }

    impl Counting {
        fn counts(&self) -> (usize, usize, usize) {
            let c = self.counts.lock().unwrap();
            (c.flushed, c.unflushed, c.syncs)
        }
    }

    impl StateBackend for Counting {
        fn load(&self, stack: &str) -> Result<Option<Checkpoint>, StateError> {
            self.files.load(stack)
        }
        fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
            self.files.save(checkpoint)
        }
        fn append(&self, checkpoint: &Checkpoint, batch: &[Mutation]) -> Result<(), StateError> {
            self.counts.lock().unwrap().flushed += 1;
            self.files.append(checkpoint, batch)
        }
        fn append_unsynced(
            &self,
            checkpoint: &Checkpoint,
            batch: &[Mutation],
        ) -> Result<(), StateError> {
            self.counts.lock().unwrap().unflushed += 1;
            self.files.append_unsynced(checkpoint, batch)
        }
        fn sync(&self, stack: &str) -> Result<(), StateError> {
            self.counts.lock().unwrap().syncs += 1;
            self.files.sync(stack)
        }
        fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
            self.files.lock(stack, operation)
        }
        fn take_over(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
            self.files.take_over(stack)
        }
        fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
            self.files.break_lock(stack)
        }
    }

    fn end(op: u64) -> Vec<Mutation> {
        vec![Mutation::End { op }]
    }

    /// Waits (at most 5 s) until the backend's counts are `want`.
    async fn until(backend: &Counting, want: (usize, usize, usize)) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while backend.counts() != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(backend.counts(), want, "(flushed, unflushed, syncs)");
    }

    fn counting(dir: &std::path::Path) -> (FileBackend, Arc<Counting>) {
        let files = FileBackend::new(dir);
        files.save(&Checkpoint::new("dev")).unwrap();
        let backend = Arc::new(Counting {
            files: files.clone(),
            counts: Mutex::default(),
        });
        (files, backend)
    }

    #[tokio::test]
    async fn results_that_keep_coming_are_still_flushed_every_flush_within() {
        let dir = tempfile::tempdir().unwrap();
        let (_, backend) = counting(dir.path());
        let writer = StateWriter::start(backend.clone(), Checkpoint::new("dev"), None);
        let start = Instant::now();
        let mut op = 0;
        while start.elapsed() < FLUSH_WITHIN * 4 {
            op += 1;
            writer.send(end(op)).unwrap();
            tokio::time::sleep(FLUSH_WITHIN / 20).await;
        }
        let (flushed, _, syncs) = backend.counts();
        let elapsed = start.elapsed();
        // Never idle for FLUSH_WITHIN, yet flushed about every FLUSH_WITHIN (not after each).
        let most = elapsed.as_millis() / FLUSH_WITHIN.as_millis() + 1;
        assert_eq!(flushed, 0);
        assert!(
            syncs >= 2 && syncs as u128 <= most,
            "{syncs} flushes of {op} batches in {elapsed:?}"
        );
        writer.finish().await.unwrap();
    }

    #[tokio::test]
    async fn a_result_nobody_waits_for_is_written_at_once_and_flushed_by_the_next_commit_or_soon_after()
     {
        let dir = tempfile::tempdir().unwrap();
        let (files, backend) = counting(dir.path());
        let writer = StateWriter::start(backend.clone(), Checkpoint::new("dev"), None);

        // A commit is flushed before it returns.
        writer.commit(end(1)).await.unwrap();
        assert_eq!(backend.counts(), (1, 0, 0));
        // A send is written at once (a process crash does not lose it), not flushed...
        writer.send(end(2)).unwrap();
        until(&backend, (1, 1, 0)).await;
        assert_eq!(files.load("dev").unwrap().unwrap().serial, 2);
        // ...until the writer has been idle for FLUSH_WITHIN.
        until(&backend, (1, 1, 1)).await;
        // Idle and flushed: nothing more.
        tokio::time::sleep(FLUSH_WITHIN * 2).await;
        assert_eq!(backend.counts(), (1, 1, 1));

        // A send then a commit: the commit's flush carries both, no separate sync.
        writer.send(end(3)).unwrap();
        writer.commit(end(4)).await.unwrap();
        let (flushed, unflushed, syncs) = backend.counts();
        assert_eq!((flushed, syncs), (2, 1), "{unflushed} unflushed");
        let finished = writer.finish().await.unwrap();
        assert_eq!(files.load("dev").unwrap(), Some(finished));
    }
}
