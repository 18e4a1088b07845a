//! A stack's lock: who holds it (`LockInfo`), the held lock (`StateLock`), and how the file
//! backend keeps it — `<dir>/<stack>.lock`, an OS file lock held as long as its holder runs,
//! naming the holder; taken over when the holder on this host is gone, broken only on
//! request and never while its holder runs here. The file is never removed (a process
//! waiting on it would lock a deleted file), only emptied.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::file::{FileBackend, corrupt, io_error, read_optional};
use super::{StateError, now_rfc3339};

/// Who holds a stack's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Process id of the holder.
    pub pid: u32,
    /// Host the holder runs on.
    pub host: String,
    /// What it is doing (`apply`, `refresh`, …).
    pub operation: String,
    /// Since when (RFC 3339).
    pub since: String,
}

impl LockInfo {
    /// This process as the holder of a lock for `operation`, from now.
    pub fn this_process(operation: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: hostname(),
            operation: operation.to_owned(),
            since: now_rfc3339(),
        }
    }

    /// The holder of a lock whose description cannot be read.
    pub fn unknown() -> Self {
        Self {
            pid: 0,
            host: "unknown".to_owned(),
            operation: "unknown".to_owned(),
            since: "unknown".to_owned(),
        }
    }

    /// Whether the holder ran on this host (so its liveness can be judged here).
    pub fn is_on_this_host(&self) -> bool {
        self.host == hostname()
    }
}

/// This machine's name, as lock holders record it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A held stack lock; released on drop.
pub struct StateLock {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl StateLock {
    /// A lock that runs `release` when dropped.
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self {
            release: Some(Box::new(release)),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl std::fmt::Debug for StateLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateLock")
    }
}

impl FileBackend {
    /// Takes the stack's lock file's OS lock and writes this process into it.
    pub(super) fn lock_file(&self, stack: &str, operation: &str) -> Result<StateLock, StateError> {
        let path = self.lock_path(stack);
        let file = match self.try_lock_file(&path)? {
            Lockable::Free(file) => file,
            Lockable::Held(holder) => {
                return Err(StateError::Locked {
                    stack: stack.to_owned(),
                    holder,
                });
            }
        };
        // Free for the OS: a holder recorded on this host is gone (the OS lets go of a dead
        // process's lock); one recorded on another host is not ours to judge.
        if let Some(holder) = read_lock(&path)?.filter(|h| !h.is_on_this_host()) {
            return Err(StateError::Locked {
                stack: stack.to_owned(),
                holder,
            });
        }
        let info = LockInfo::this_process(operation);
        let bytes = serde_json::to_vec(&info).map_err(|e| corrupt(&path, e.to_string()))?;
        write_holder(&file, &bytes).map_err(|source| io_error(&path, source))?;
        Ok(StateLock::new(move || {
            // Never removed (a process waiting on the old file would lock a deleted one):
            // emptied, then unlocked. Explicitly: a child forked meanwhile (a provider
            // starting a process) shares the open file until it execs, and closing our copy
            // alone would leave the lock held for that moment; unlocking frees it for all.
            let _ = file.set_len(0);
            let _ = file.unlock();
        }))
    }

    /// Takes over a lock file whose holder on this host is gone.
    pub(super) fn take_over_lock_file(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path(stack);
        let Lockable::Free(file) = self.try_lock_file(&path)? else {
            return Ok(None);
        };
        let holder = read_lock(&path)?.filter(LockInfo::is_on_this_host);
        if holder.is_some() {
            write_holder(&file, b"").map_err(|source| io_error(&path, source))?;
        }
        Ok(holder)
    }

    /// Empties a lock file no live process of this host holds.
    pub(super) fn break_lock_file(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path(stack);
        match self.try_lock_file(&path)? {
            Lockable::Held(holder) if holder.is_on_this_host() => Err(StateError::HolderAlive {
                stack: stack.to_owned(),
                holder,
            }),
            Lockable::Held(holder) => Err(StateError::Locked {
                stack: stack.to_owned(),
                holder,
            }),
            Lockable::Free(file) => {
                let holder = read_lock(&path)?;
                write_holder(&file, b"").map_err(|source| io_error(&path, source))?;
                Ok(holder)
            }
        }
    }

    /// Opens the lock file and takes its OS lock without waiting.
    fn try_lock_file(&self, path: &Path) -> Result<Lockable, StateError> {
        self.ensure_dir()?;
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(|source| io_error(path, source))?;
        match file.try_lock() {
            Ok(()) => Ok(Lockable::Free(file)),
            Err(TryLockError::WouldBlock) => Ok(Lockable::Held(
                read_lock(path)?.unwrap_or_else(LockInfo::unknown),
            )),
            Err(TryLockError::Error(source)) => Err(io_error(path, source)),
        }
    }
}

/// What the lock file says when asked for its OS lock.
enum Lockable {
    /// The OS lock is ours now (the file stays locked while this is open).
    Free(File),
    /// A live process holds it.
    Held(LockInfo),
}

/// Replaces the lock file's content (the holder's description) durably.
fn write_holder(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The holder a lock file names (`None`: empty or unreadable).
fn read_lock(path: &Path) -> Result<Option<LockInfo>, StateError> {
    Ok(read_optional(path)?.and_then(|text| serde_json::from_str(&text).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateBackend;

    /// Run by `a_lock_left_by_a_killed_process_is_taken_over`, in a child process: takes
    /// the lock of the folder `IAC_TEST_LOCK_DIR` names and waits to be killed.
    #[test]
    #[ignore = "a helper that another test runs in a child process"]
    fn hold_the_lock_until_killed() {
        let Some(dir) = std::env::var_os("IAC_TEST_LOCK_DIR") else {
            return;
        };
        let _held = FileBackend::new(dir).lock("dev", "apply").unwrap();
        println!("locked");
        std::thread::sleep(std::time::Duration::from_secs(120));
    }

    #[test]
    fn a_lock_left_by_a_killed_process_is_taken_over() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state::lock::tests::hold_the_lock_until_killed",
                "--ignored",
                "--nocapture",
            ])
            .env("IAC_TEST_LOCK_DIR", dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let locked = io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("locked"));
        assert!(locked, "the child took the lock");

        let backend = FileBackend::new(dir.path());
        match backend.lock("dev", "refresh") {
            Err(StateError::Locked { holder, .. }) => assert_eq!(holder.pid, child.id()),
            other => panic!("a live holder keeps its lock: {other:?}"),
        }
        let alive = backend.break_lock("dev").unwrap_err();
        assert!(matches!(alive, StateError::HolderAlive { .. }), "{alive}");
        assert_eq!(backend.take_over("dev").unwrap(), None);

        child.kill().unwrap(); // SIGKILL: nothing of the child runs on the way out
        child.wait().unwrap();
        let holder = backend.take_over("dev").unwrap().expect("taken over");
        assert_eq!(
            (holder.pid, holder.operation.as_str()),
            (child.id(), "apply")
        );
        assert!(backend.lock("dev", "apply").is_ok());
    }

    #[test]
    fn a_lock_taken_on_another_host_stays_until_broken() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path());
        let elsewhere = LockInfo {
            pid: 4242,
            host: "build-7".to_owned(),
            operation: "apply".to_owned(),
            since: "2026-01-01T00:00:00Z".to_owned(),
        };
        std::fs::write(
            backend.lock_path("dev"),
            serde_json::to_vec(&elsewhere).unwrap(),
        )
        .unwrap();
        let err = backend.lock("dev", "apply").unwrap_err().to_string();
        assert!(err.contains("pid 4242 on host build-7"), "{err}");
        assert_eq!(backend.take_over("dev").unwrap(), None);
        assert_eq!(backend.break_lock("dev").unwrap(), Some(elsewhere));
        assert!(backend.lock("dev", "apply").is_ok());
    }

    #[test]
    fn a_lock_is_exclusive_until_released_and_a_live_one_is_never_broken() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path());
        let held = backend.lock("dev", "apply").unwrap();
        assert!(matches!(
            backend.lock("dev", "apply"),
            Err(StateError::Locked { .. })
        ));
        drop(held);
        let again = backend.lock("dev", "apply").unwrap();
        assert!(matches!(
            backend.break_lock("dev"),
            Err(StateError::HolderAlive { .. })
        ));
        drop(again);
        assert_eq!(
            backend.break_lock("dev").unwrap(),
            None,
            "released: no holder"
        );
        assert!(backend.lock("dev", "refresh").is_ok());
    }
}
