//! The local file backend: `<dir>/<stack>.json` (snapshot), `<stack>.journal` (durable
//! batches since the snapshot) and `<stack>.lock` (kept by `lock.rs`).
//!
//! The snapshot is only ever replaced atomically (temp file, fsync, rename, fsync of the
//! folder). Between snapshots each batch is appended to the journal as one JSON line and
//! fsynced, so a step costs one small write instead of rewriting the whole state. Loading
//! replays the journal over the snapshot; a torn last line (a crash mid-append, never
//! acknowledged) is ignored.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Checkpoint, JournalBatch, LockInfo, Mutation, StateBackend, StateError, StateLock};

/// Stores each stack's state in files under one folder.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
    /// Journals this backend appended to whole: their last line is complete, so the next
    /// append needs no look at the tail.
    whole: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FileBackend {
    /// A backend storing state under `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            whole: Arc::default(),
        }
    }

    fn whole(&self) -> MutexGuard<'_, HashSet<PathBuf>> {
        self.whole.lock().unwrap_or_else(PoisonError::into_inner)
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

    pub(super) fn lock_path(&self, stack: &str) -> PathBuf {
        self.dir.join(format!("{stack}.lock"))
    }

    pub(super) fn ensure_dir(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.dir).map_err(|source| io_error(&self.dir, source))
    }
}

pub(super) fn io_error(path: &Path, source: io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn read_optional(path: &Path) -> Result<Option<String>, StateError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, source)),
    }
}

pub(super) fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, and the new one
/// survives a crash: a temporary file beside it (with `mode` when given), fsynced, renamed
/// over, the folder fsynced. The snapshot is written this way; so are a local provider's files.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        if let Some(mode) = mode {
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    write_atomically(path, bytes, None).map_err(|source| io_error(path, source))
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
        let mut checkpoint = Checkpoint::from_snapshot(stack, &text, &path)?;
        if let Some(journal) = read_optional(&journal_path)? {
            let lines: Vec<&str> = journal.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let record = match serde_json::from_str::<JournalBatch>(line) {
                    Ok(record) => record,
                    Err(e) => match after_torn_prefix(line) {
                        Some(record) => record,
                        // A torn final line was never acknowledged: the batch did not happen.
                        None if i + 1 == lines.len() => continue,
                        None => {
                            return Err(corrupt(&journal_path, format!("line {}: {e}", i + 1)));
                        }
                    },
                };
                if record.serial > checkpoint.serial {
                    for m in &record.mutations {
                        checkpoint.apply(m);
                    }
                    checkpoint.serial = record.serial;
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
        self.append_line(checkpoint, batch, Flush::Now)
    }

    fn append_unsynced(
        &self,
        checkpoint: &Checkpoint,
        batch: &[Mutation],
    ) -> Result<(), StateError> {
        self.append_line(checkpoint, batch, Flush::Later)
    }

    fn sync(&self, stack: &str) -> Result<(), StateError> {
        let path = self.journal_path(stack);
        match File::open(&path) {
            Ok(file) => file.sync_data().map_err(|source| io_error(&path, source)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error(&path, source)),
        }
    }

    fn lock(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
        self.lock_file(stack, operation)
    }

    fn take_over(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        self.take_over_lock_file(stack)
    }

    fn break_lock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        self.break_lock_file(stack)
    }
}

/// Whether an appended line is flushed to the disk before the append returns.
#[derive(Clone, Copy, PartialEq)]
enum Flush {
    Now,
    /// By a later append's flush, or [`StateBackend::sync`].
    Later,
}

impl FileBackend {
    /// Appends one batch to the journal as a line (the first batch of a stack without a
    /// snapshot saves the snapshot instead).
    fn append_line(
        &self,
        checkpoint: &Checkpoint,
        batch: &[Mutation],
        flush: Flush,
    ) -> Result<(), StateError> {
        if !self.snapshot_path(&checkpoint.stack).exists() {
            return self.save(checkpoint);
        }
        let path = self.journal_path(&checkpoint.stack);
        let mut line = JournalBatch::encode(checkpoint.serial, batch)
            .map_err(|e| corrupt(&path, e.to_string()))?;
        line.push(b'\n');
        // Taken out while the append runs: a failure part-way leaves it out, so the next
        // append cuts what this one tore.
        let whole = self.whole().remove(&path);
        let result = (|| {
            let mut file = if whole {
                OpenOptions::new().create(true).append(true).open(&path)?
            } else {
                let mut file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .write(true)
                    .truncate(false)
                    .open(&path)?;
                let end = cut_torn_tail(&mut file)?;
                file.seek(SeekFrom::Start(end))?;
                file
            };
            file.write_all(&line)?;
            match flush {
                Flush::Now => file.sync_data(),
                Flush::Later => Ok(()),
            }
        })();
        result.map_err(|source| io_error(&path, source))?;
        self.whole().insert(path);
        Ok(())
    }
}

/// Cuts a torn last line (an append that failed half-way: a full disk, a crash; never
/// acknowledged) so that the next batch starts a line of its own; returns the new length.
fn cut_torn_tail(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..usize::try_from(end - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(buf)?;
        if let Some(newline) = buf.iter().rposition(|b| *b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < len {
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(end)
}

/// A journal line that failed to parse: a torn batch that an earlier version continued on the
/// same line holds the complete batch after it. That batch, when there is one.
fn after_torn_prefix(line: &str) -> Option<JournalBatch> {
    let start = line.rfind("{\"serial\":").filter(|i| *i > 0)?;
    serde_json::from_str(&line[start..]).ok()
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
    fn an_append_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, mut cp) = journaled(dir.path());
        let journal = backend.journal_path("dev");
        // A batch cut short (the disk filled up mid-write), then the next run's batches.
        let text = fs::read_to_string(&journal).unwrap();
        fs::write(&journal, format!("{text}{{\"serial\":3,\"mutat")).unwrap();
        // The next run's backend.
        let backend = FileBackend::new(dir.path());
        for op in 3..=4 {
            let m = pending(op);
            cp.apply(&m);
            cp.serial += 1;
            backend.append(&cp, &[m]).unwrap();
        }
        assert_eq!(backend.load("dev").unwrap(), Some(cp.clone()));
        assert_eq!(fs::read_to_string(&journal).unwrap().lines().count(), 4);
        // And again, with the journal's only line torn.
        backend.save(&cp).unwrap();
        fs::write(&journal, "{\"serial\":9,\"mu").unwrap();
        let backend = FileBackend::new(dir.path());
        let m = pending(5);
        cp.apply(&m);
        cp.serial += 1;
        backend.append(&cp, &[m]).unwrap();
        assert_eq!(backend.load("dev").unwrap(), Some(cp));
    }

    #[test]
    fn a_torn_batch_an_earlier_version_continued_on_its_line_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (backend, cp) = journaled(dir.path());
        let journal = backend.journal_path("dev");
        let text = fs::read_to_string(&journal).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Versions before the repair appended the next batch right after a torn one.
        let continued = format!("{}\n{{\"serial\":2,\"mutat{}\n", lines[0], lines[1]);
        fs::write(&journal, continued).unwrap();
        assert_eq!(backend.load("dev").unwrap(), Some(cp));
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
        // A newer format that this version would parse is refused all the same.
        let mut newer = Checkpoint::new("dev");
        newer.version = 9;
        fs::write(
            backend.snapshot_path("dev"),
            serde_json::to_vec(&newer).unwrap(),
        )
        .unwrap();
        let err = backend.load("dev").unwrap_err().to_string();
        assert!(err.contains("has format version 9"), "{err}");

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
}
