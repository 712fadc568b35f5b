//! What a run would change (or changed): one [`Change`] per resource, shown
//! to people (`+`, `~`, `-`, `-/+`) and to machines (`--json`).
//!
//! Values are rendered as text by the resource modules, with secrets already
//! masked: nothing here can print a secret.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

impl FieldChange {
    pub fn new(field: &str, old: impl fmt::Debug, new: impl fmt::Debug) -> FieldChange {
        FieldChange { field: field.to_owned(), old: format!("{old:?}"), new: format!("{new:?}") }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: &'static str,
    pub id: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Changes other than no-ops.
    pub fn pending(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }

    pub fn has_changes(&self) -> bool {
        self.pending().next().is_some()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_changes() {
            return writeln!(f, "No changes: AWS matches the stack.");
        }
        for change in self.pending() {
            let sign = match change.action {
                Action::Create => "+",
                Action::Update => "~",
                Action::Replace => "-/+",
                Action::Delete => "-",
                Action::NoOp => " ",
            };
            writeln!(f, "{sign:>3} {} {}", change.kind, change.id)?;
            for field in &change.fields {
                writeln!(f, "        {}: {} → {}", field.field, field.old, field.new)?;
            }
        }
        let count = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        writeln!(
            f,
            "Plan: {} to create, {} to update, {} to replace, {} to delete.",
            count(Action::Create),
            count(Action::Update),
            count(Action::Replace),
            count(Action::Delete)
        )
    }
}
