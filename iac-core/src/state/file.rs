//! The local file backend: `<dir>/<stack>.json` (snapshot), `<stack>.journal` (durable
//! batches since the snapshot) and `<stack>.lock`.
//!
//! The snapshot is only ever replaced atomically (temp file, fsync, rename, fsync of the
//! folder). Between snapshots each batch is appended to the journal as one JSON line and
//! fsynced, so a step costs one small write instead of rewriting the whole state. Loading
//! replays the journal over the snapshot; a torn last line (a crash mid-append, never
//! acknowledged) is ignored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{
    Checkpoint, LockInfo, Mutation, STATE_VERSION, StateBackend, StateError, StateLock, now_rfc3339,
};

/// Stores each stack's state in files under one folder.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
}

#[derive(Deserialize)]
struct JournalRecord {
    serial: u64,
    mutations: Vec<Mutation>,
}

#[derive(Serialize)]
struct JournalRecordRef<'a> {
    serial: u64,
    mutations: &'a [Mutation],
}

#[derive(Deserialize)]
struct VersionProbe {
    version: u32,
}

impl FileBackend {
    /// A backend storing state under `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot file of a stack.
    pub fn snapshot_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.json"))
    }

    fn journal_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.journal"))
    }

    fn lock_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.lock"))
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.dir).map_err(|source| io_error(&self.dir, source))
    }
}

fn io_error(path: &Path, source: io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, StateError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, source)),
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Writes `bytes` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&tmp);
        io_error(path, source)
    })
}

impl StateBackend for FileBackend {
    fn load(&self, stack: &str) -> Result<Option<Checkpoint>, StateError> {
        let path = self.snapshot_path(stack);
        let journal_path = self.journal_path(stack);
        let Some(text) = read_optional(&path)? else {
            if journal_path.exists() {
                return Err(corrupt(
                    &journal_path,
                    "a journal exists without its snapshot",
                ));
            }
            return Ok(None);
        };
        let probe: VersionProbe =
            serde_json::from_str(&text).map_err(|e| corrupt(&path, e.to_string()))?;
        if probe.version > STATE_VERSION {
            return Err(StateError::UnsupportedVersion {
                path,
                found: probe.version,
            });
        }
        let mut checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| corrupt(&path, e.to_string()))?;
        if checkpoint.stack != stack {
            return Err(corrupt(
                &path,
                format!("it records stack `{}`, not `{stack}`", checkpoint.stack),
            ));
        }
        if let Some(journal) = read_optional(&journal_path)? {
            let lines: Vec<&str> = journal.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str::<JournalRecord>(line) {
                    Ok(record) if record.serial <= checkpoint.serial => {}
                    Ok(record) => {
                        for m in &record.mutations {
                            checkpoint.apply(m);
                        }
                        checkpoint.serial = record.serial;
                    }
                    // A torn final line was never acknowledged: the batch did not happen.
                    Err(_) if i + 1 == lines.len() => {}
                    Err(e) => {
                        return Err(corrupt(&journal_path, format!("line {}: {e}", i + 1)));
                    }
                }
            }
        }
        Ok(Some(checkpoint))
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StateError> {
        self.ensure_dir()?;
        let path = self.snapshot_path(&checkpoint.stack);
        let bytes = serde_json::to_vec(checkpoint).map_err(|e| corrupt(&path, e.to_string()))?;
        write_atomic(&path, &bytes)?;
        let journal = self.journal_path(&checkpoint.stack);
        match fs::remove_file(&journal) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&journal, e)),
            _ => Ok(()),
        }
    }

    fn append(&self, checkpoint: &Checkpoint, batch: &[Mutation]) -> Result<(), StateError> {
        if !self.snapshot_path(&checkpoint.stack).exists() {
            return self.save(checkpoint);
        }
        let path = self.journal_path(&checkpoint.stack);
        let mut line = serde_json::to_vec(&JournalRecordRef {
            serial: checkpoint.serial,
            mutations: batch,
        })
        .map_err(|e| corrupt(&path, e.to_string()))?;
        line.push(b'\n');
        let result = (|| {
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&line)?;
            file.sync_data()
        })();
        result.map_err(|source| io_error(&path, source))
    }

    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
        self.ensure_dir()?;
        let path = self.lock_path(stack);
        let info = LockInfo {
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_owned(),
            since: now_rfc3339(),
        };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let bytes = serde_json::to_vec(&info).map_err(|e| corrupt(&path, e.to_string()))?;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|source| io_error(&path, source))?;
                Ok(StateLock::new(move || {
                    let _ = fs::remove_file(&path);
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = read_lock(&path)?.unwrap_or(LockInfo {
                    pid: 0,
                    host: "unknown".to_owned(),
                    operation: "unknown".to_owned(),
                    since: "unknown".to_owned(),
                });
                Err(StateError::Locked {
                    stack: stack.to_owned(),
                    holder,
                })
            }
            Err(source) => Err(io_error(&path, source)),
        }
    }

    fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path(stack);
        let holder = read_lock(&path)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&path, e)),
            _ => Ok(holder),
        }
    }
}

fn read_lock(path: &Path) -> Result<Option<LockInfo>, StateError> {
    Ok(read_optional(path)?.and_then(|text| serde_json::from_str(&text).ok()))
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{PendingKind, PendingOperation};

    fn pending(op_id: u64) -> Mutation {
        Mutation::Begin {
            pending: PendingOperation {
                op_id,
                kind: PendingKind::Create,
                name: format!("r{op_id}"),
                type_token: "test:Thing".to_owned(),
                id: None,
                inputs: Default::default(),
                secrets: Default::default(),
                dependencies: Vec::new(),
                started: "2026-01-01T00:00:00Z".to_owned(),
            },
        }
    }

    fn journaled(dir: &Path) -> (FileBackend, Checkpoint) {
        let backend = FileBackend::new(dir);
        let mut cp = Checkpoint::new("dev");
        backend.save(&cp).unwrap();
        for op in 1..=2 {
            let m = pending(op);
            cp.apply(&m);
            cp.serial += 1;
            backend.append(&cp, &[m]).unwrap();
        }
        (backend, cp)
    }

    #[test]
    fn load_replays_the_journal_over_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, cp) = journaled(dir.path());
        assert_eq!(backend.load("dev").unwrap(), Some(cp.clone()));
        // Compaction folds the journal into the snapshot and removes it.
        backend.save(&cp).unwrap();
        assert!(!backend.journal_path("dev").exists());
        assert_eq!(backend.load("dev").unwrap(), Some(cp));
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("dev.json")]);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_damaged_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, cp) = journaled(dir.path());
        let journal = backend.journal_path("dev");
        let text = fs::read_to_string(&journal).unwrap();
        let torn = format!("{text}{{\"serial\":3,\"mutat");
        fs::write(&journal, &torn).unwrap();
        assert_eq!(backend.load("dev").unwrap(), Some(cp));

        let lines: Vec<&str> = text.lines().collect();
        fs::write(&journal, format!("{}\n garbage\n{}\n", lines[0], lines[1])).unwrap();
        let err = backend.load("dev").unwrap_err().to_string();
        assert!(
            err.ends_with("dev.journal is damaged: line 2: expected value at line 1 column 2"),
            "{err}"
        );
    }

    #[test]
    fn a_newer_format_and_a_foreign_stack_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path());
        fs::write(backend.snapshot_path("dev"), r#"{"version": 9}"#).unwrap();
        let err = backend.load("dev").unwrap_err().to_string();
        assert!(
            err.contains(
                "dev.json has format version 9; this iac-core reads up to 1: upgrade iac-core"
            ),
            "{err}"
        );

        let other = Checkpoint::new("prod");
        fs::write(
            backend.snapshot_path("dev"),
            serde_json::to_vec(&other).unwrap(),
        )
        .unwrap();
        let err = backend.load("dev").unwrap_err().to_string();
        assert!(
            err.ends_with("is damaged: it records stack `prod`, not `dev`"),
            "{err}"
        );
        assert_eq!(backend.load("missing").unwrap(), None);
    }

    #[test]
    fn a_lock_is_exclusive_until_released_or_broken() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path());
        let held = backend.lock("dev", "apply").unwrap();
        assert!(matches!(
            backend.lock("dev", "apply"),
            Err(StateError::Locked { .. })
        ));
        drop(held);
        let _again = backend.lock("dev", "apply").unwrap();
        let holder = backend.break_lock("dev").unwrap().unwrap();
        assert_eq!(
            (holder.pid, holder.operation.as_str()),
            (std::process::id(), "apply")
        );
        assert!(backend.lock("dev", "refresh").is_ok());
    }
}
