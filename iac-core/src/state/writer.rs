//! The state writer: one thread that applies mutations in order and persists them in
//! batches (group commit), acknowledging each caller only once its batch is durable.
//!
//! Many steps finishing at once share one fsync; a step that must record a pending operation
//! before calling its provider waits for exactly that. After a failed write the writer refuses
//! every later batch, so the engine never runs ahead of what is on disk.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Checkpoint, Mutation, StateBackend, StateError};

type Ack = oneshot::Sender<Result<(), StateError>>;
type Receiver = oneshot::Receiver<Result<(), StateError>>;

fn gone(reason: &str) -> StateError {
    StateError::WriterGone {
        reason: reason.to_owned(),
    }
}

pub(crate) struct StateWriter {
    tx: Option<mpsc::Sender<(Vec<Mutation>, Ack)>>,
    thread: Option<JoinHandle<Result<Checkpoint, StateError>>>,
}

impl StateWriter {
    pub(crate) fn start(backend: Arc<dyn StateBackend>, mut checkpoint: Checkpoint) -> Self {
        let (tx, rx) = mpsc::channel::<(Vec<Mutation>, Ack)>();
        let thread = std::thread::spawn(move || {
            let mut failed: Option<Arc<StateError>> = None;
            let mut dirty = false;
            while let Ok(first) = rx.recv() {
                dirty = true;
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                let result = match &failed {
                    Some(first) => Err(Arc::clone(first)),
                    None => {
                        let mutations: Vec<Mutation> =
                            batch.iter_mut().flat_map(|(m, _)| m.drain(..)).collect();
                        for m in &mutations {
                            checkpoint.apply(m);
                        }
                        checkpoint.serial += 1;
                        backend.append(&checkpoint, &mutations).map_err(Arc::new)
                    }
                };
                if let Err(first) = &result {
                    failed = Some(Arc::clone(first));
                }
                for (_, ack) in batch {
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
        }
    }

    fn enqueue(&self, mutations: Vec<Mutation>) -> Result<Receiver, StateError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| gone("already finished"))?
            .send((mutations, ack))
            .map_err(|_| gone("its thread ended"))?;
        Ok(done)
    }

    /// Persists `mutations`; returns once they are durable.
    pub(crate) async fn commit(&self, mutations: Vec<Mutation>) -> Result<(), StateError> {
        self.enqueue(mutations)?
            .await
            .map_err(|_| gone("its thread ended"))?
    }

    /// Queues `mutations` without waiting for them to be durable. Batches are written in
    /// order, so anything committed later is durable only once these are; a failure here
    /// fails every later commit and [`StateWriter::finish`].
    pub(crate) fn send(&self, mutations: Vec<Mutation>) -> Result<(), StateError> {
        self.enqueue(mutations).map(drop)
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

impl Drop for StateWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
    }
}
