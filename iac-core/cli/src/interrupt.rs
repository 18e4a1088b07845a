//! Ctrl-C and SIGTERM during an apply. The first stops it between steps: no new step starts,
//! the provider calls in flight finish and are recorded, the summary is printed, and the
//! command exits 130 (SIGINT) or 143 (SIGTERM). A second exits at once: what was in flight
//! stays recorded as pending, and the next run resolves it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use iac_core::StopSignal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::error::{Error, exit};

/// Listens for SIGINT and SIGTERM while it lives.
pub(crate) struct Interrupts {
    first: Arc<AtomicU8>,
    task: JoinHandle<()>,
}

impl Interrupts {
    /// Stops `stop` on the first signal; exits the process on the second.
    pub(crate) fn watch(stop: StopSignal) -> Result<Self, Error> {
        let mut interrupt =
            signal(SignalKind::interrupt()).map_err(Error::io("cannot listen for Ctrl-C"))?;
        let mut terminate =
            signal(SignalKind::terminate()).map_err(Error::io("cannot listen for SIGTERM"))?;
        let first = Arc::new(AtomicU8::new(0));
        let seen = Arc::clone(&first);
        let task = tokio::spawn(async move {
            loop {
                let code = tokio::select! {
                    _ = interrupt.recv() => exit::INTERRUPTED,
                    _ = terminate.recv() => exit::TERMINATED,
                };
                if let Err(earlier) =
                    seen.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst)
                {
                    eprintln!(
                        "\nstopped at once: the calls in flight stay recorded as pending, and the next run resolves them"
                    );
                    std::process::exit(i32::from(earlier));
                }
                stop.stop();
                eprintln!(
                    "\nstopping: no new step starts; the steps in flight finish and are recorded (interrupt again to stop at once)"
                );
            }
        });
        Ok(Self { first, task })
    }

    /// The exit code of the first signal, if one came.
    pub(crate) fn exit_code(&self) -> Option<u8> {
        match self.first.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}
