//! The state writer: one thread that applies mutations in order and persists them in
//! batches (group commit), acknowledging each caller only once its batch is durable.
//!
//! Many steps finishing at once share one fsync; a step that must record a pending operation
//! before calling its provider waits for exactly that. After a failed write the writer refuses
//! every later batch, so the engine never runs ahead of what is on disk.
//!
//! Callers hand it mutations in plaintext: the writer seals every secret value (with the
//! stack's cipher) before a mutation leaves the caller, so nothing unsealed reaches a backend.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Checkpoint, Mutation, StateBackend, StateError};
use crate::secrets::Cipher;

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
            stack,
            cipher,
        }
    }

    fn enqueue(&self, mut mutations: Vec<Mutation>) -> Result<Receiver, StateError> {
        for m in &mut mutations {
            m.seal(&self.stack, self.cipher.as_ref())?;
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| gone("already finished"))?
            .send((mutations, ack))
            .map_err(|_| gone("its thread ended"))?;
        Ok(done)
    }

    /// Persists `mutations` (sealed); returns once they are durable.
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
