//! The Pulumi-style preview text of a plan: one line per changing resource (`+ ~ +- - >`),
//! its property changes beneath, and a summary line. Pure function of a [`PlanRecord`], so a
//! saved plan renders exactly as it did when it was made; secrets show as `[secret]`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use crate::record::{Operation, PlanRecord, PropertyDiff, Shown, StepRecord};

/// An input a create leaves unset (`null`, `{}`, `[]`) says nothing: it is not listed.
fn is_empty(value: Option<&Shown>) -> bool {
    match value {
        Some(Shown::Value(Value::Null)) => true,
        Some(Shown::Value(Value::Object(o))) => o.is_empty(),
        Some(Shown::Value(Value::Array(a))) => a.is_empty(),
        _ => false,
    }
}

/// The changed lines of a multi-line text (a file's content) as a unified diff with two
/// lines of context, indented under its property.
fn line_diff(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        let _ = writeln!(out, "            {}", hunk.header());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            let _ = writeln!(
                out,
                "            {sign}{}",
                change.value().trim_end_matches('\n')
            );
        }
    }
    out
}

/// A map of texts (a folder's files by path): an object whose values are all strings, some
/// of several lines. Shown file by file, not as one line of JSON.
fn texts(value: &Value) -> Option<&serde_json::Map<String, Value>> {
    match value {
        Value::Object(map)
            if !map.is_empty()
                && map.values().all(Value::is_string)
                && map
                    .values()
                    .any(|v| v.as_str().is_some_and(|t| t.contains('\n'))) =>
        {
            Some(map)
        }
        _ => None,
    }
}

/// `(1 line)`, `(12 lines)`.
fn lines(text: &str) -> String {
    match text.lines().count() {
        1 => "(1 line)".to_owned(),
        n => format!("({n} lines)"),
    }
}

/// The texts that a change adds, removes or edits, each edit as a line diff.
fn texts_diff(
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
) -> String {
    let mut out = String::new();
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (None, Some(text)) => {
                let _ = writeln!(
                    out,
                    "          + {key} {}",
                    lines(text.as_str().unwrap_or(""))
                );
            }
            (Some(_), None) => {
                let _ = writeln!(out, "          - {key}");
            }
            (Some(Value::String(a)), Some(Value::String(b))) if a != b => {
                let _ = writeln!(out, "          ~ {key}:");
                out.push_str(&line_diff(a, b));
            }
            _ => {}
        }
    }
    out
}

/// Renders the preview of a plan.
pub fn render(plan: &PlanRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Previewing stack {}", plan.stack);
    interrupted(&mut out, plan);
    steps(&mut out, plan);
    moves(&mut out, plan);
    if !plan.rolls.is_empty() {
        let _ = writeln!(out, "\nRolling, one at a time:");
        for roll in &plan.rolls {
            let _ = writeln!(out, "  {roll}");
        }
    }
    let _ = writeln!(out, "\nResources: {}", summary(plan));
    if !plan.targets.is_all() {
        let _ = writeln!(out, "{}", targeted(plan));
    }
    out
}

/// The operations an interrupted run left, if any.
fn interrupted(out: &mut String, plan: &PlanRecord) {
    if plan.interrupted.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nInterrupted operations from an earlier run (run refresh to resolve them before apply):"
    );
    for op in &plan.interrupted {
        let _ = writeln!(out, "  ! {op}");
    }
}

/// A line per changing step, its property changes beneath.
fn steps(out: &mut String, plan: &PlanRecord) {
    let shown: Vec<&StepRecord> = plan
        .steps
        .iter()
        .filter(|s| s.op != Operation::Same && !s.forgets_a_data_source())
        .collect();
    let type_width = shown.iter().map(|s| s.type_token.len()).max().unwrap_or(0);
    let name_width = shown.iter().map(|s| s.name.len()).max().unwrap_or(0);
    if !shown.is_empty() {
        out.push('\n');
    }
    for step in shown {
        let mut what = step.op.word().to_owned();
        if step.op == Operation::Replace {
            what.push_str(if step.delete_before_replace {
                " (delete before create)"
            } else {
                " (create before delete)"
            });
        }
        let _ = writeln!(
            out,
            " {:<2} {:<type_width$}  {:<name_width$}  {what}",
            step.op.symbol(),
            step.type_token,
            step.name,
        );
        for d in step
            .diff
            .iter()
            .filter(|d| !(step.op == Operation::Create && is_empty(d.new.as_ref())))
        {
            property(out, step.op, d);
        }
    }
}

/// One property's change: a line, or a text's line diff, or a map of texts file by file.
fn property(out: &mut String, op: Operation, d: &PropertyDiff) {
    if d.key == crate::FORCED_REPLACEMENT && d.old.is_none() && d.new.is_none() {
        let _ = writeln!(out, "        {} (forces replacement)", d.key);
        return;
    }
    let forces = if d.replace {
        " (forces replacement)"
    } else {
        ""
    };
    if let (Some(Shown::Value(Value::String(old))), Some(Shown::Value(Value::String(new)))) =
        (&d.old, &d.new)
        && (old.contains('\n') || new.contains('\n'))
    {
        let _ = writeln!(out, "        ~ {}:{forces}", d.key);
        out.push_str(&line_diff(old, new));
        return;
    }
    // A map of texts file by file; one known only after apply as far as it is known
    // now (its sketch), each part that is not written as the mark.
    let (planned, note) = match (&d.new, &d.sketch) {
        (Some(Shown::Unknown), Some(sketch)) => {
            (Some(sketch), " (known after apply; as far as known now)")
        }
        (Some(Shown::Value(value)), _) => (Some(value), ""),
        _ => (None, ""),
    };
    if let Some(new) = planned.and_then(texts) {
        let empty = serde_json::Map::new();
        let old = match &d.old {
            Some(Shown::Value(value)) => texts(value),
            _ => None,
        };
        let sign = if d.old.is_some() { "~ " } else { "" };
        let _ = writeln!(out, "        {sign}{}:{note}{forces}", d.key);
        out.push_str(&texts_diff(old.unwrap_or(&empty), new));
        return;
    }
    // Any other value known only after apply, as far as it is known now.
    if let (Some(Shown::Unknown), Some(sketch)) = (&d.new, &d.sketch) {
        let line = match &d.old {
            Some(old) => format!("~ {}: {old} => {sketch}", d.key),
            None if op == Operation::Create => format!("{}: {sketch}", d.key),
            None => format!("+ {}: {sketch}", d.key),
        };
        let _ = writeln!(out, "        {line}{note}{forces}");
        return;
    }
    let line = match (&d.old, &d.new) {
        (None, Some(Shown::Value(Value::String(text)))) if text.contains('\n') => {
            format!("{}: {}", d.key, lines(text))
        }
        (None, Some(new)) if op == Operation::Create => format!("{}: {new}", d.key),
        (None, Some(new)) => format!("+ {}: {new}", d.key),
        (Some(old), None) => format!("- {}: {old}", d.key),
        (Some(old), Some(new)) => format!("~ {}: {old} => {new}", d.key),
        (None, None) => format!("~ {}", d.key),
    };
    let _ = writeln!(out, "        {line}{forces}");
}

/// The records moved to a new name, if any.
fn moves(out: &mut String, plan: &PlanRecord) {
    if plan.moves.is_empty() {
        return;
    }
    out.push('\n');
    let type_width = plan
        .moves
        .iter()
        .map(|m| m.type_token.len())
        .max()
        .unwrap_or(0);
    for m in &plan.moves {
        let _ = writeln!(
            out,
            " => {:<type_width$}  {}  moved from `{}`",
            m.type_token, m.to, m.from
        );
    }
}

/// `2 to create, 1 to update, 36 unchanged`.
fn summary(plan: &PlanRecord) -> String {
    let c = plan.counts();
    let mut parts = Vec::new();
    if !plan.moves.is_empty() {
        parts.push(format!("{} to move", plan.moves.len()));
    }
    for (n, word) in [
        (c.create, "to create"),
        (c.update, "to update"),
        (c.replace, "to replace"),
        (c.delete, "to delete"),
        (c.read, "to read"),
        (c.same, "unchanged"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if parts.is_empty() {
        parts.push("no resources".to_owned());
    }
    parts.join(", ")
}

/// What a targeted plan covers and leaves: `Targeted: `vpc` with what they need; 40 other
/// resources not targeted, left as they are`.
fn targeted(plan: &PlanRecord) -> String {
    let targets = &plan.targets;
    let quoted = |names: &BTreeSet<String>| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut named = Vec::new();
    if !targets.names.is_empty() {
        named.push(quoted(&targets.names));
    }
    if !targets.excluded.is_empty() {
        named.push(format!("every resource but {}", quoted(&targets.excluded)));
    }
    let reach = if targets.dependents {
        "with what they need and what depends on them"
    } else {
        "with what they need"
    };
    let (others, left_as) = match plan.untargeted {
        1 => ("1 other resource".to_owned(), "it is"),
        n => (format!("{n} other resources"), "they are"),
    };
    format!(
        "Targeted: {} {reach}; {others} not targeted, left as {left_as}",
        named.join(" and ")
    )
}
