//! Progress of an apply or destroy, printed: one line per finished step with its elapsed time
//! and, on a terminal, a live block of the steps still running, redrawn in place; and the
//! question before it ([`confirm`]).
//!
//! ```no_run
//! # use iac_core::{ApplyOptions, Engine, Plan, Program};
//! # async fn run(engine: Engine, program: Program, plan: Plan) -> Result<(), iac_core::EngineError> {
//! use iac_core::Progress;
//!
//! let progress = Progress::stdout();
//! let options = ApplyOptions { events: Some(progress.events()), ..ApplyOptions::default() };
//! let summary = engine.apply(&program, &plan, &options).await?;
//! progress.finish().await;
//! println!("{summary}"); // Stack dev: 2 created, 0 updated, … in 3.1s
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{ApplyEvent, Operation};

/// How often the live block of running steps is redrawn.
const REDRAW: Duration = Duration::from_millis(200);

/// `3.1s`: how durations read in progress lines and summaries.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn verb(op: Operation, old: bool) -> &'static str {
    match (op, old) {
        (Operation::Replace, true) => "deleting replaced",
        (Operation::Create, _) => "creating",
        (Operation::Update, _) => "updating",
        (Operation::Replace, false) => "replacing",
        (Operation::Delete, _) => "deleting",
        (Operation::Read, _) => "reading",
        (Operation::Same, _) => "checking",
    }
}

/// The line that reports an event, if it has one.
fn line(event: &ApplyEvent) -> Option<String> {
    match event {
        ApplyEvent::Finished {
            name,
            op,
            old,
            error: None,
            elapsed,
        } if *op != Operation::Same => Some(format!(
            "  {:<2} {name}: {} done ({})",
            op.symbol(),
            verb(*op, *old),
            seconds(*elapsed)
        )),
        ApplyEvent::Finished {
            name,
            error: Some(error),
            elapsed,
            ..
        } => Some(format!(
            "  !  {name}: failed after {}: {error}",
            seconds(*elapsed)
        )),
        ApplyEvent::Skipped {
            name, blocked_by, ..
        } => Some(format!("  -  {name}: skipped ({blocked_by})")),
        ApplyEvent::Waiting { name, gate, reason } => Some(format!(
            "  …  {name}: waiting for the gate {} it: {reason}",
            gate.word()
        )),
        _ => None,
    }
}

/// A printer of [`ApplyEvent`]s running beside an apply: give [`Progress::events`] to
/// [`ApplyOptions::events`](crate::ApplyOptions::events), and call [`Progress::finish`] once
/// the apply returned, so every line is printed before what comes next.
///
/// Without a live block (`live` false, or standard output not a terminal) each step prints a
/// line when it starts and one when it ends; with it, only the ends are lines and the running
/// steps are redrawn below them with their time so far.
pub struct Progress {
    events: UnboundedSender<ApplyEvent>,
    finish: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Prints to standard output, with a live block when it is a terminal.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout(), std::io::stdout().is_terminal())
    }

    /// Prints to `out`; `live` redraws the running steps in place (terminal escapes).
    pub fn new(out: impl Write + Send + 'static, live: bool) -> Self {
        let (events, received) = unbounded_channel();
        let (finish, finished) = oneshot::channel();
        let task = tokio::spawn(print(received, finished, out, live));
        Self {
            events,
            finish,
            task,
        }
    }

    /// The sender for [`ApplyOptions::events`](crate::ApplyOptions::events).
    pub fn events(&self) -> UnboundedSender<ApplyEvent> {
        self.events.clone()
    }

    /// Prints what is left and stops (the live block is cleared).
    pub async fn finish(self) {
        // The apply has returned: every event it sent is queued, so the printer drains the
        // queue and stops even if the sender handed out is still alive.
        let _ = self.finish.send(());
        let _ = self.task.await;
    }
}

/// Asks `question` on the terminal and waits for the answer: `Some(true)` only for `yes`;
/// `None` without a terminal on standard input (a script must say yes another way, such as
/// a flag of its own, rather than have its input guessed).
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// if iac_core::confirm("Apply these changes to stack dev?")? != Some(true) {
///     return Ok(());
/// }
/// # Ok(()) }
/// ```
pub fn confirm(question: &str) -> std::io::Result<Option<bool>> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{question} [yes/no] ")?;
    out.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(Some(answer.trim() == "yes"))
}

/// The steps running now, with when each started.
type Running = BTreeMap<String, (Operation, bool, Instant)>;

async fn print(
    mut events: UnboundedReceiver<ApplyEvent>,
    mut finished: oneshot::Receiver<()>,
    mut out: impl Write,
    live: bool,
) {
    let mut running = Running::new();
    let mut drawn = 0usize;
    let mut tick = tokio::time::interval(REDRAW);
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => Some(event),
                None => break,
            },
            _ = &mut finished => break,
            _ = tick.tick(), if live => None,
        };
        clear(&mut out, &mut drawn);
        if let Some(event) = event {
            show(&mut out, &event, &mut running, live);
        }
        if live {
            drawn = draw(&mut out, &running);
        }
        let _ = out.flush();
    }
    clear(&mut out, &mut drawn);
    while let Ok(event) = events.try_recv() {
        show(&mut out, &event, &mut running, live);
    }
    let _ = out.flush();
}

/// Moves up over the live block and clears it.
fn clear(out: &mut impl Write, drawn: &mut usize) {
    if *drawn > 0 {
        let _ = write!(out, "\x1b[{drawn}A\x1b[J");
        *drawn = 0;
    }
}

fn show(out: &mut impl Write, event: &ApplyEvent, running: &mut Running, live: bool) {
    match event {
        ApplyEvent::Started { name, op, old } => {
            if !live {
                let _ = writeln!(out, "  {:<2} {name}: {}...", op.symbol(), verb(*op, *old));
            }
            running.insert(name.clone(), (*op, *old, Instant::now()));
        }
        ApplyEvent::Finished { name, .. } | ApplyEvent::Skipped { name, .. } => {
            running.remove(name);
            if let Some(text) = line(event) {
                let _ = writeln!(out, "{text}");
            }
        }
        ApplyEvent::Waiting { .. } => {
            if let Some(text) = line(event) {
                let _ = writeln!(out, "{text}");
            }
        }
    }
}

/// Draws the running steps; returns how many lines that took.
fn draw(out: &mut impl Write, running: &Running) -> usize {
    for (name, (op, old, since)) in running {
        let _ = writeln!(
            out,
            "  ~  {name}: {}... {}",
            verb(*op, *old),
            seconds(since.elapsed())
        );
    }
    running.len()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::SkipReason;

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    fn finished(name: &str, op: Operation, error: Option<&str>) -> ApplyEvent {
        ApplyEvent::Finished {
            name: name.to_owned(),
            op,
            old: false,
            error: error.map(str::to_owned),
            elapsed: Duration::from_millis(1300),
        }
    }

    #[tokio::test]
    async fn every_event_sent_before_finish_is_printed_even_while_a_sender_lives() {
        let out = Captured::default();
        let progress = Progress::new(out.clone(), false);
        let events = progress.events();
        let started = ApplyEvent::Started {
            name: "vpc".to_owned(),
            op: Operation::Create,
            old: false,
        };
        for event in [
            started,
            finished("vpc", Operation::Create, None),
            finished("subnet", Operation::Create, Some("quota exceeded")),
            ApplyEvent::Skipped {
                name: "instance".to_owned(),
                op: Operation::Create,
                blocked_by: SkipReason::Needs("subnet".to_owned()),
            },
            finished("rule", Operation::Same, None),
        ] {
            let _ = events.send(event);
        }
        progress.finish().await;
        assert_eq!(
            out.text(),
            "  +  vpc: creating...\n  +  vpc: creating done (1.3s)\n  !  subnet: failed after \
             1.3s: quota exceeded\n  -  instance: skipped (needs subnet)\n",
        );
        drop(events);
    }

    #[tokio::test]
    async fn the_live_block_is_cleared_when_the_apply_ends() {
        let out = Captured::default();
        let progress = Progress::new(out.clone(), true);
        let _ = progress.events().send(ApplyEvent::Started {
            name: "vpc".to_owned(),
            op: Operation::Update,
            old: false,
        });
        tokio::time::sleep(REDRAW * 2).await;
        let _ = progress
            .events()
            .send(finished("vpc", Operation::Update, None));
        progress.finish().await;
        let text = out.text();
        assert!(text.contains("  ~  vpc: updating... "), "{text:?}");
        assert!(
            text.ends_with("\x1b[J  ~  vpc: updating done (1.3s)\n"),
            "{text:?}"
        );
    }
}
