//! Progress of an apply or destroy: one line per finished step with its elapsed time and,
//! on a terminal, a live block of the steps still running, redrawn in place.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use iac_core::{ApplyEvent, Operation};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::seconds;

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

/// A line to print for an event, if any.
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
        } => Some(format!("  -  {name}: skipped ({blocked_by} failed)")),
        _ => None,
    }
}

/// Prints progress until the sender is dropped. `live` redraws the running steps in place.
pub(crate) async fn show(mut events: UnboundedReceiver<ApplyEvent>, quiet: bool, live: bool) {
    let mut running: BTreeMap<String, (Operation, bool, Instant)> = BTreeMap::new();
    let mut drawn = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => Some(event),
                None => break,
            },
            _ = tick.tick(), if live => None,
        };
        if quiet {
            continue;
        }
        let mut out = std::io::stdout().lock();
        if live && drawn > 0 {
            // Move up over the running block and clear it.
            let _ = write!(out, "\x1b[{drawn}A\x1b[J");
        }
        match &event {
            Some(ApplyEvent::Started { name, op, old }) => {
                if !live {
                    let _ = writeln!(out, "  {:<2} {name}: {}...", op.symbol(), verb(*op, *old));
                }
                running.insert(name.clone(), (*op, *old, Instant::now()));
            }
            Some(e @ (ApplyEvent::Finished { name, .. } | ApplyEvent::Skipped { name, .. })) => {
                running.remove(name);
                if let Some(text) = line(e) {
                    let _ = writeln!(out, "{text}");
                }
            }
            _ => {}
        }
        drawn = 0;
        if live {
            for (name, (op, old, since)) in &running {
                let _ = writeln!(
                    out,
                    "  ~  {name}: {}... {}",
                    verb(*op, *old),
                    seconds(since.elapsed())
                );
                drawn += 1;
            }
        }
        let _ = out.flush();
    }
}
