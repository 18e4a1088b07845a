//! A resource kind's diff table: for each input, whether a change is made in place or needs
//! replacement. Declared once per kind, it answers [`super::Provider::diff`] and renders the
//! table the kind's documentation shows, so the two cannot disagree.

use std::fmt::Write as _;

use super::{DiffResponse, PropertyChange};

/// How a change of an input is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Updated in place.
    InPlace,
    /// The resource is replaced (created anew, then the old one deleted).
    Replace,
    /// The resource is replaced, deleting the old one first (its name is unique).
    ReplaceDeletingFirst,
}

impl Change {
    fn replaces(self) -> bool {
        self != Change::InPlace
    }

    fn describe(self) -> &'static str {
        match self {
            Change::InPlace => "in place",
            Change::Replace => "replace",
            Change::ReplaceDeletingFirst => "replace, deleting first",
        }
    }
}

/// One row: these inputs change this way.
#[derive(Debug, Clone, Copy)]
pub struct DiffRow {
    /// The inputs.
    pub inputs: &'static [&'static str],
    /// How a change of any of them is made.
    pub change: Change,
    /// Why, when it is not obvious (shown in the documentation).
    pub note: &'static str,
}

/// The diff table of one resource kind.
#[derive(Debug, Clone, Copy)]
pub struct DiffTable {
    /// The kind's type token.
    pub type_token: &'static str,
    /// Every input of the kind, each in exactly one row.
    pub rows: &'static [DiffRow],
}

impl DiffTable {
    /// How a change of `input` is made; an input the table does not list is replaced (the
    /// safe reading of an input nobody declared).
    pub fn change_of(&self, input: &str) -> Change {
        self.rows
            .iter()
            .find(|row| row.inputs.contains(&input))
            .map_or(Change::Replace, |row| row.change)
    }

    /// The provider's answer for these changed inputs.
    pub fn diff(&self, changed: Vec<String>) -> DiffResponse {
        let changes: Vec<PropertyChange> = changed
            .into_iter()
            .map(|key| PropertyChange {
                replace: self.change_of(&key).replaces(),
                key,
            })
            .collect();
        let delete_before_replace = changes
            .iter()
            .any(|c| self.change_of(&c.key) == Change::ReplaceDeletingFirst);
        DiffResponse {
            changes,
            delete_before_replace,
        }
    }

    /// Inputs of `fields` the table does not list, and inputs it lists that are not fields
    /// (a test of each kind holds both empty against its argument struct).
    pub fn mismatches(&self, fields: &[&str]) -> (Vec<String>, Vec<String>) {
        let listed: Vec<&str> = self
            .rows
            .iter()
            .flat_map(|r| r.inputs.iter().copied())
            .collect();
        let unlisted = fields
            .iter()
            .filter(|f| !listed.contains(f))
            .map(|f| (*f).to_owned())
            .collect();
        let unknown = listed
            .iter()
            .filter(|l| !fields.contains(l))
            .map(|l| (*l).to_owned())
            .collect();
        (unlisted, unknown)
    }

    /// The table as Markdown: a heading with the type token, then `| input | change |`.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### `{}`\n\n| input | change |\n|---|---|\n",
            self.type_token
        );
        for row in self.rows {
            let inputs: Vec<String> = row.inputs.iter().map(|i| format!("`{i}`")).collect();
            let _ = write!(out, "| {} | {}", inputs.join(", "), row.change.describe());
            if !row.note.is_empty() {
                let _ = write!(out, " ({})", row.note);
            }
            out.push_str(" |\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: DiffTable = DiffTable {
        type_token: "test:Key",
        rows: &[
            DiffRow {
                inputs: &["key_name"],
                change: Change::ReplaceDeletingFirst,
                note: "names are unique",
            },
            DiffRow {
                inputs: &["tags"],
                change: Change::InPlace,
                note: "",
            },
        ],
    };

    #[test]
    fn the_table_answers_diff_and_renders_the_same_rows() {
        let tags_only = TABLE.diff(vec!["tags".to_owned()]);
        assert_eq!(
            (
                tags_only.changes[0].replace,
                tags_only.delete_before_replace
            ),
            (false, false)
        );
        let renamed = TABLE.diff(vec!["key_name".to_owned(), "tags".to_owned()]);
        assert_eq!(
            (renamed.changes[0].replace, renamed.delete_before_replace),
            (true, true)
        );
        assert!(TABLE.diff(vec!["undeclared".to_owned()]).changes[0].replace);
        assert_eq!(
            TABLE.markdown(),
            "### `test:Key`\n\n| input | change |\n|---|---|\n\
             | `key_name` | replace, deleting first (names are unique) |\n\
             | `tags` | in place |\n"
        );
        assert_eq!(
            TABLE.mismatches(&["key_name", "public_key"]),
            (vec!["public_key".to_owned()], vec!["tags".to_owned()])
        );
    }
}
