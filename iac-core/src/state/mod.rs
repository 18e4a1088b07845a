//! Stack state: the versioned checkpoint, its mutations, and the backend trait.
//!
//! A [`Checkpoint`] records every resource (type, inputs, outputs, provider id, dependencies),
//! the stack outputs and the operations in flight. The engine never edits it directly during a
//! run: it sends [`Mutation`]s to a writer that applies them in order and persists each batch
//! before acknowledging it, so a pending operation is durable before the provider call it
//! announces. The writer seals every secret value before a mutation is queued; nothing outside
//! this module can seal or write one unsealed.

mod file;
pub(crate) mod load;
mod lock;
pub(crate) mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use file::{FileBackend, write_atomically};
pub use lock::{LockInfo, StateLock, hostname};

use crate::property::PropertyMap;
use crate::secrets::{Cipher, EncryptionHeader, SecretsError};
use crate::stack::NodeKind;

/// The checkpoint format this version writes and reads.
pub const STATE_VERSION: u32 = 1;

/// One stack's recorded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The stack.
    pub stack: String,
    /// Random id of this stack's history, fixed when the stack is first written.
    pub lineage: String,
    /// Incremented by every persisted batch of mutations.
    pub serial: u64,
    /// How secrets are encrypted, once the stack has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionHeader>,
    /// Resources, by name.
    #[serde(default)]
    pub resources: Resources,
    /// Stack outputs.
    #[serde(default)]
    pub outputs: PropertyMap,
    /// Which stack outputs are secret.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub secret_outputs: BTreeSet<String>,
    /// Operations that started and have not been recorded as finished, by operation id.
    #[serde(default, with = "pending_list")]
    pub pending: BTreeMap<u64, PendingOperation>,
}

impl Checkpoint {
    /// An empty checkpoint for a new stack.
    pub fn new(stack: &str) -> Self {
        let lineage: u128 = rand::random();
        Self {
            version: STATE_VERSION,
            stack: stack.to_owned(),
            lineage: format!("{lineage:032x}"),
            serial: 0,
            encryption: None,
            resources: Resources::default(),
            outputs: PropertyMap::new(),
            secret_outputs: BTreeSet::new(),
            pending: BTreeMap::new(),
        }
    }

    /// The live (not pending-delete) record of `name`.
    pub fn resource(&self, name: &str) -> Option<&ResourceState> {
        self.resources.live(name)
    }

    /// Applies one mutation.
    /// Parses a stored snapshot of `stack` (`path` names where it is stored in errors):
    /// refused when it is damaged, of a newer format, or another stack's.
    pub fn from_snapshot(stack: &str, text: &str, path: &Path) -> Result<Self, StateError> {
        #[derive(Deserialize)]
        struct VersionProbe {
            version: u32,
        }
        let corrupt = |reason: String| StateError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let newer = |found: u32| StateError::UnsupportedVersion {
            path: path.to_owned(),
            found,
        };
        // Parsed once; only a document that does not parse is read again, for its version: a
        // newer format is named as such, not as damage.
        let checkpoint: Self = match serde_json::from_str(text) {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                return Err(match serde_json::from_str::<VersionProbe>(text) {
                    Ok(probe) if probe.version > STATE_VERSION => newer(probe.version),
                    _ => corrupt(e.to_string()),
                });
            }
        };
        if checkpoint.version > STATE_VERSION {
            return Err(newer(checkpoint.version));
        }
        if checkpoint.stack != stack {
            return Err(corrupt(format!(
                "it records stack `{}`, not `{stack}`",
                checkpoint.stack
            )));
        }
        Ok(checkpoint)
    }

    /// Applies one mutation (what a backend does replaying its journal over a snapshot).
    pub fn apply(&mut self, mutation: &Mutation) {
        let end = |pending: &mut BTreeMap<u64, PendingOperation>, op: Option<u64>| {
            if let Some(op) = op {
                pending.remove(&op);
            }
        };
        match mutation {
            Mutation::Begin { pending } => {
                self.pending.insert(pending.op_id, pending.clone());
            }
            Mutation::End { op } => end(&mut self.pending, Some(*op)),
            Mutation::Put { resource, end: op } => {
                self.resources.put(resource.clone());
                end(&mut self.pending, *op);
            }
            Mutation::Remove { name, id, end: op } => {
                self.resources.remove(name, id);
                end(&mut self.pending, *op);
            }
            Mutation::Rename { from, to } => self.resources.rename(from, to),
            Mutation::Outputs {
                outputs,
                secret_outputs,
            } => {
                self.outputs = outputs.clone();
                self.secret_outputs = secret_outputs.clone();
            }
            Mutation::Encryption { header } => self.encryption = Some(header.clone()),
        }
    }

    /// Opens every secret value of a stored checkpoint, in place.
    pub(crate) fn unseal(&mut self, cipher: Option<&Cipher>) -> Result<(), SecretsError> {
        let how = Transform::Unseal;
        let stack = &self.stack;
        for r in self.resources.0.values_mut().flatten() {
            r.transform(stack, cipher, how)?;
        }
        for p in self.pending.values_mut() {
            transform_map(&mut p.inputs, &p.secrets, stack, &p.name, cipher, how)?;
        }
        let owner = "stack outputs";
        transform_map(
            &mut self.outputs,
            &self.secret_outputs,
            stack,
            owner,
            cipher,
            how,
        )
    }
}

#[derive(Clone, Copy)]
enum Transform {
    Seal,
    Unseal,
}

/// Seals or opens, in place, the values of `map` whose keys are in `secrets`.
fn transform_map(
    map: &mut PropertyMap,
    secrets: &BTreeSet<String>,
    stack: &str,
    owner: &str,
    cipher: Option<&Cipher>,
    how: Transform,
) -> Result<(), SecretsError> {
    for key in secrets {
        let Some(value) = map.get_mut(key) else {
            continue;
        };
        let cipher = cipher.ok_or_else(|| SecretsError::NoPassphrase {
            stack: stack.to_owned(),
        })?;
        *value = match how {
            Transform::Seal => cipher.seal(value),
            Transform::Unseal => cipher.unseal(value, &format!("{owner}.{key}"))?,
        };
    }
    Ok(())
}

/// Pending operations are stored as a flat list.
mod pending_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::PendingOperation;

    pub(super) fn serialize<S: Serializer>(
        pending: &BTreeMap<u64, PendingOperation>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(pending.values())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u64, PendingOperation>, D::Error> {
        let list = Vec::<PendingOperation>::deserialize(deserializer)?;
        Ok(list.into_iter().map(|p| (p.op_id, p)).collect())
    }
}

/// Recorded resources by name; a name has two records while its replacement is in flight.
/// Stored as a flat list ordered by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources(BTreeMap<String, Vec<ResourceState>>);

impl Resources {
    /// Every record, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &ResourceState> {
        self.0.values().flatten()
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The live (not pending-delete) record of `name`.
    pub fn live(&self, name: &str) -> Option<&ResourceState> {
        self.0.get(name)?.iter().find(|r| !r.delete_pending)
    }

    /// Removes every record of `name` (none: it is not recorded).
    pub(crate) fn take(&mut self, name: &str) -> Vec<ResourceState> {
        self.0.remove(name).unwrap_or_default()
    }

    /// Moves every record of `old` to `name`, and points every record that depended on
    /// `old` at `name`.
    pub(crate) fn rename(&mut self, old: &str, name: &str) {
        let mut records = self.take(old);
        for r in &mut records {
            r.name = name.to_owned();
        }
        for r in self.0.values_mut().flatten() {
            for dependency in &mut r.dependencies {
                if dependency == old {
                    *dependency = name.to_owned();
                }
            }
        }
        self.0.insert(name.to_owned(), records);
    }

    /// The names of the records that depend on `name`.
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .iter()
            .filter(|r| r.dependencies.iter().any(|d| d == name))
            .map(|r| r.name.as_str())
            .collect();
        found.dedup();
        found
    }

    /// Records `resource`: replaces the record with its id; an older record of the name
    /// becomes delete-pending (a data source's is dropped).
    fn put(&mut self, resource: ResourceState) {
        let records = self.0.entry(resource.name.clone()).or_default();
        records.retain(|r| r.id != resource.id && r.kind != NodeKind::DataSource);
        for r in records.iter_mut() {
            r.delete_pending = true;
        }
        push_exact(records, resource);
    }

    fn remove(&mut self, name: &str, id: &str) {
        if let Some(records) = self.0.get_mut(name) {
            records.retain(|r| r.id != id);
            if records.is_empty() {
                self.0.remove(name);
            }
        }
    }
}

/// Adds a record to a name's list, growing it by exactly one: a name almost always has one
/// record, and a list's first growth would make room for four.
fn push_exact(records: &mut Vec<ResourceState>, record: ResourceState) {
    records.reserve_exact(1);
    records.push(record);
}

impl Serialize for Resources {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Each record put in its place as it is read: no list of them all in between.
        struct Records;
        impl<'de> serde::de::Visitor<'de> for Records {
            type Value = Resources;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of resource records")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Resources, A::Error> {
                let mut resources = Resources::default();
                while let Some(r) = seq.next_element::<ResourceState>()? {
                    push_exact(resources.0.entry(r.name.clone()).or_default(), r);
                }
                Ok(resources)
            }
        }
        deserializer.deserialize_seq(Records)
    }
}

/// One recorded resource or data source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Name in the stack.
    pub name: String,
    /// Type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Managed resource or data source.
    pub kind: NodeKind,
    /// Provider id.
    pub id: String,
    /// Inputs it was created or last updated with.
    pub inputs: PropertyMap,
    /// Outputs the provider returned.
    pub outputs: PropertyMap,
    /// Names of the resources it depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Input/output keys whose values are secret.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub secrets: BTreeSet<String>,
    /// Delete and replace are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protect: bool,
    /// An old copy whose replacement exists; deleted by the next apply if not yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_pending: bool,
}

impl ResourceState {
    /// Encrypts the record's secret values in place, as it is written to disk.
    fn seal(&mut self, stack: &str, cipher: Option<&Cipher>) -> Result<(), SecretsError> {
        self.transform(stack, cipher, Transform::Seal)
    }

    fn transform(
        &mut self,
        stack: &str,
        cipher: Option<&Cipher>,
        how: Transform,
    ) -> Result<(), SecretsError> {
        transform_map(
            &mut self.inputs,
            &self.secrets,
            stack,
            &self.name,
            cipher,
            how,
        )?;
        transform_map(
            &mut self.outputs,
            &self.secrets,
            stack,
            &self.name,
            cipher,
            how,
        )
    }
}

/// The kind of an operation in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// A create whose result was not recorded.
    Create,
    /// An update whose result was not recorded.
    Update,
    /// A delete whose result was not recorded.
    Delete,
}

/// An operation recorded before its provider call and cleared after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOperation {
    /// Unique within the stack's history.
    pub op_id: u64,
    /// What was being done.
    pub kind: PendingKind,
    /// The resource's name.
    pub name: String,
    /// The resource's type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Provider id (absent for a create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Inputs of the operation.
    pub inputs: PropertyMap,
    /// Input keys whose values are secret.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub secrets: BTreeSet<String>,
    /// Names of the resources it depends on.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// When it started (RFC 3339).
    pub started: String,
}

/// A change to a checkpoint, persisted in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mutation", rename_all = "snake_case")]
pub enum Mutation {
    /// An operation is about to call the provider.
    Begin {
        /// The operation.
        pending: PendingOperation,
    },
    /// An operation ended without changing a resource record (it failed).
    End {
        /// The operation id.
        op: u64,
    },
    /// Records (inserts or replaces) a resource; older records of the name become
    /// delete-pending.
    Put {
        /// The record.
        resource: ResourceState,
        /// The operation this completes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<u64>,
    },
    /// Removes the record of a deleted resource.
    Remove {
        /// Its name.
        name: String,
        /// Its provider id.
        id: String,
        /// The operation this completes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<u64>,
    },
    /// Moves a resource's records to a new name (an alias in the program), and what
    /// depends on it with them.
    Rename {
        /// The recorded name.
        from: String,
        /// The name in the program.
        to: String,
    },
    /// Replaces the stack outputs.
    Outputs {
        /// The outputs.
        outputs: PropertyMap,
        /// Which are secret.
        secret_outputs: BTreeSet<String>,
    },
    /// Sets the secrets header (the first time a secret is stored).
    Encryption {
        /// The header.
        header: EncryptionHeader,
    },
}

impl Mutation {
    /// Encrypts the secret values the mutation carries, in place (what the writer does to
    /// each mutation before it is queued).
    fn seal(&mut self, stack: &str, cipher: Option<&Cipher>) -> Result<(), SecretsError> {
        let how = Transform::Seal;
        match self {
            Mutation::Put { resource, .. } => resource.seal(stack, cipher),
            Mutation::Begin { pending } => transform_map(
                &mut pending.inputs,
                &pending.secrets,
                stack,
                &pending.name,
                cipher,
                how,
            ),
            Mutation::Outputs {
                outputs,
                secret_outputs,
            } => transform_map(outputs, secret_outputs, stack, "stack outputs", cipher, how),
            Mutation::End { .. }
            | Mutation::Remove { .. }
            | Mutation::Rename { .. }
            | Mutation::Encryption { .. } => Ok(()),
        }
    }
}

/// One durable batch of mutations in a journal: the checkpoint's serial after it and the
/// mutations, in order (a backend's journal is a sequence of these).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalBatch {
    /// The checkpoint's serial once the batch is applied.
    pub serial: u64,
    /// The mutations.
    pub mutations: Vec<Mutation>,
}

impl JournalBatch {
    /// The JSON of the batch of `mutations` after which the checkpoint's serial is `serial`
    /// (what [`JournalBatch`] reads back), without copying the mutations.
    pub fn encode(serial: u64, mutations: &[Mutation]) -> serde_json::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            serial: u64,
            mutations: &'a [Mutation],
        }
        serde_json::to_vec(&Borrowed { serial, mutations })
    }
}

/// State storage failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing a state file failed.
    #[error("state file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A state file cannot be parsed.
    #[error("state file {} is damaged: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A newer format than this version understands.
    #[error(
        "state file {} has format version {found}; this iac-core reads up to {STATE_VERSION}: upgrade iac-core",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Another run holds the stack's lock.
    #[error(
        "stack `{stack}` is locked by pid {} on host {} ({}) since {}: wait for that run to finish; a lock left on another host by a run that is gone must be broken (`Engine::break_lock`)",
        holder.pid, holder.host, holder.operation, holder.since
    )]
    Locked {
        /// The stack.
        stack: String,
        /// The holder.
        holder: LockInfo,
    },
    /// Breaking a lock was refused: its holder is alive on this host.
    #[error(
        "stack `{stack}` is locked by pid {} on this host ({}) since {}, which is still running: wait for it to finish, or stop it",
        holder.pid, holder.operation, holder.since
    )]
    HolderAlive {
        /// The stack.
        stack: String,
        /// The holder.
        holder: LockInfo,
    },
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// Reading the state was interrupted (the blocking read task did not complete).
    #[error(
        "reading the state of stack `{stack}` was interrupted: {reason}; run the command again"
    )]
    ReadInterrupted {
        /// The stack.
        stack: String,
        /// What the runtime said.
        reason: String,
    },
    /// A remote state store refused a request for a reason someone must fix (a bucket that
    /// does not exist, a permission missing).
    #[error("state in {location}: {reason}")]
    StoreRefused {
        /// Where the state is (`s3://bucket/prefix`).
        location: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A remote state store failed or could not be reached.
    #[error("state in {location}: {reason}")]
    Store {
        /// Where the state is.
        location: String,
        /// What failed.
        reason: String,
    },
    /// A state write failed; the writer refuses every later batch with the same error, so
    /// nothing after it is acknowledged.
    #[error("{0}")]
    WriteFailed(Arc<StateError>),
    /// The state writer is gone (its thread ended early or the runtime stopped).
    #[error("the state writer is gone: {reason}")]
    WriterGone {
        /// What ended it.
        reason: String,
    },
}

impl StateError {
    /// Whether someone must act (wait for or break a lock, upgrade, give the right
    /// passphrase) rather than storage having failed.
    pub fn is_user_error(&self) -> bool {
        match self {
            StateError::Locked { .. }
            | StateError::HolderAlive { .. }
            | StateError::UnsupportedVersion { .. }
            | StateError::StoreRefused { .. } => true,
            StateError::Secrets(e) => e.is_user_error(),
            StateError::WriteFailed(first) => first.is_user_error(),
            StateError::Io { .. }
            | StateError::Corrupt { .. }
            | StateError::ReadInterrupted { .. }
            | StateError::Store { .. }
            | StateError::WriterGone { .. } => false,
        }
    }
}

/// Where checkpoints live. Blocking I/O: the engine calls it from a blocking context.
pub trait StateBackend: Send + Sync + 'static {
    /// The stack's checkpoint with every durable mutation applied; `None` for a new stack.
    fn load(&self, stack: &str) -> Result<Option<Checkpoint>, StateError>;

    /// Replaces the checkpoint atomically (all or nothing, durable on return).
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError>;

    /// Durably records a batch of mutations that `checkpoint` (already updated) includes.
    /// The default rewrites the whole checkpoint; backends that can append do so.
    fn append(&self, checkpoint: &Checkpoint, batch: &[Mutation]) -> Result<(), StateError> {
        let _ = batch;
        self.save(checkpoint)
    }

    /// Records a batch that no caller waits for yet, like [`StateBackend::append`], except
    /// that it need be durable only once a later `append`, [`StateBackend::sync`] or `save`
    /// of the stack returns: the writer defers the flush of a step's result until the next
    /// step needs one, so that a chain of steps pays one flush per step. The default is
    /// `append`.
    fn append_unsynced(
        &self,
        checkpoint: &Checkpoint,
        batch: &[Mutation],
    ) -> Result<(), StateError> {
        self.append(checkpoint, batch)
    }

    /// Makes durable every batch of the stack recorded with
    /// [`StateBackend::append_unsynced`]. The default has nothing to flush.
    fn sync(&self, stack: &str) -> Result<(), StateError> {
        let _ = stack;
        Ok(())
    }

    /// Takes the stack's lock for `operation`, or fails naming the holder. A lock whose
    /// holder ran on this host and is gone is taken over; one held from another host is not.
    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError>;

    /// Clears a lock whose holder ran on this host and is gone, returning who held it
    /// (`None` when the lock is free, held by a live process, or held from another host).
    fn take_over(&self, stack: &str) -> Result<Option<LockInfo>, StateError>;

    /// Clears the lock whatever its holder's host (the explicit way out of a lock left on
    /// another machine), returning who held it; refused while the holder is alive here.
    fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError>;
}

/// A backend chosen at run time (a file folder or a bucket, say).
impl StateBackend for Box<dyn StateBackend> {
    fn load(&self, stack: &str) -> Result<Option<Checkpoint>, StateError> {
        (**self).load(stack)
    }
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        (**self).save(checkpoint)
    }
    fn append(&self, checkpoint: &Checkpoint, batch: &[Mutation]) -> Result<(), StateError> {
        (**self).append(checkpoint, batch)
    }
    fn append_unsynced(
        &self,
        checkpoint: &Checkpoint,
        batch: &[Mutation],
    ) -> Result<(), StateError> {
        (**self).append_unsynced(checkpoint, batch)
    }
    fn sync(&self, stack: &str) -> Result<(), StateError> {
        (**self).sync(stack)
    }
    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
        (**self).lock(stack, operation)
    }
    fn take_over(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        (**self).take_over(stack)
    }
    fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        (**self).break_lock(stack)
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
