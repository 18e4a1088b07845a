//! Processes as the kernel reports them (`/proc`): a process is identified by its pid *and*
//! its start time, so a pid the kernel gave to another process after ours exited is never
//! taken for ours, nor signalled.

use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process};

/// The environment variables that mark a service with its stack and resource (the local
/// ownership tags), so an interrupted create's process is found again.
pub(crate) const STACK_VAR: &str = "IAC_STACK";
pub(crate) const RESOURCE_VAR: &str = "IAC_RESOURCE";

/// One process: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
}

/// A `stat` file of `/proc` after the command name: the state (field 3) and the start time
/// (field 22, clock ticks after boot).
fn stat_at(path: &str) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may hold spaces: the fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

fn exited(state: char) -> bool {
    matches!(state, 'Z' | 'X')
}

/// Whether a thread of `pid` other than its first still runs. A multi-threaded process whose
/// first thread has exited is still exiting (its files, and so its ports, still open) until
/// every other thread has too.
fn threads_running(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|task| {
        let path = task.path().join("stat");
        path.to_str()
            .and_then(stat_at)
            .is_some_and(|(state, _)| !exited(state))
    })
}

impl Process {
    /// The process running as `pid` now, if any: one whose threads have all exited (a
    /// zombie) is not running.
    pub(crate) fn of(pid: i32) -> Option<Self> {
        let (state, start_time) = stat_at(&format!("/proc/{pid}/stat"))?;
        (!exited(state) || threads_running(pid)).then_some(Self { pid, start_time })
    }

    /// Whether this very process still runs.
    pub(crate) fn is_running(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }

    /// Stops it and its process group: SIGTERM, then SIGKILL after `grace`. Nothing is sent
    /// once the pid is no longer this process.
    pub(crate) async fn stop(&self, grace: Duration) {
        let Some(group) = Pid::from_raw(self.pid) else {
            return;
        };
        if !self.is_running() {
            return;
        }
        let _ = kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + grace;
        while self.is_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if self.is_running() {
            let _ = kill_process_group(group, Signal::KILL);
            while self.is_running() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The running process whose environment marks it as `stack`'s resource `name`.
    pub(crate) fn marked(stack: &str, name: &str) -> Option<Self> {
        let wanted = [
            format!("{STACK_VAR}={stack}"),
            format!("{RESOURCE_VAR}={name}"),
        ];
        std::fs::read_dir("/proc")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| Pid::from_raw(*pid).is_some_and(|p| test_kill_process(p).is_ok()))
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
                    wanted.iter().all(|w| vars.contains(&w.as_bytes()))
                })
            })
            .and_then(Self::of)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::process::CommandExt;

    use super::*;

    #[tokio::test]
    async fn a_process_is_its_pid_and_start_time_and_stops_with_its_group() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let process = Process::of(pid).unwrap();
        assert!(process.is_running());
        let reused = Process {
            start_time: process.start_time + 1,
            ..process
        };
        assert!(
            !reused.is_running(),
            "another start time is another process"
        );
        reused.stop(Duration::from_millis(100)).await;
        assert!(
            process.is_running(),
            "nothing was sent to a process that is not ours"
        );
        process.stop(Duration::from_secs(5)).await;
        child.wait().unwrap();
        assert!(!process.is_running());
    }

    /// A process whose first thread has exited while another runs still holds what it
    /// opened (a port among them): it is running until its last thread has exited.
    #[tokio::test]
    async fn a_process_runs_until_its_last_thread_has_exited() {
        let script = "import threading, time, ctypes\n\
                      threading.Thread(target=time.sleep, args=(30,)).start()\n\
                      ctypes.CDLL(None).pthread_exit(None)";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let started = Instant::now();
        while stat_at(&format!("/proc/{pid}/stat")).is_some_and(|(state, _)| !exited(state)) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no pthread_exit"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let process = Process::of(pid).expect("its other thread still runs");
        process.stop(Duration::from_secs(5)).await;
        assert!(!threads_running(pid));
        child.wait().unwrap();
        assert!(!process.is_running());
    }
}
