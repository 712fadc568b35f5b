//! What a run will change: one [`Step`] per resource, in the order the
//! executor may take them, shown to people (`+`, `~`, `-/+`, `-`) and to
//! machines (`--json`, and saved plans that `apply plan.json` carries out).
//!
//! Values are rendered as text by the resource modules, with secrets already
//! masked: nothing here can print or save a secret.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Which resource: its kind and its name within the stack
/// (`api_route` + `GET /pets/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    pub kind: String,
    pub name: String,
}

impl Address {
    pub fn new(kind: &str, name: impl Into<String>) -> Address {
        Address { kind: kind.to_owned(), name: name.into() }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// A value in a desired resource: known now, or an output of another
/// resource that exists only once that one has been created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Val {
    Known(String),
    /// `{"output_of": {...address}, "output": "id"}`.
    Ref {
        output_of: Address,
        output: String,
    },
}

impl Val {
    pub fn output(of: Address, output: &str) -> Val {
        Val::Ref { output_of: of, output: output.to_owned() }
    }

    /// The value; an unresolved reference here is a bug of the executor.
    pub fn known(&self) -> anyhow::Result<&str> {
        match self {
            Val::Known(value) => Ok(value),
            Val::Ref { output_of, output } => anyhow::bail!("{output} of {output_of} is not known yet"),
        }
    }

    /// How a plan shows it.
    pub fn shown(&self) -> Shown {
        match self {
            Val::Known(value) => Shown::Value(value.clone()),
            Val::Ref { output_of, output } => {
                Shown::KnownAfterApply { output: output.clone(), of: output_of.to_string() }
            }
        }
    }
}

/// A value of a plan, as a person reads it: what `~` steps show either side
/// of the arrow (`(none) → 90`). Saved and printed as that text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Shown {
    /// A value, in its plain rendering (text in quotes, `Some` dropped).
    Value(String),
    /// A secret: never shown, compared by the kind itself.
    Sensitive,
    /// An output of another resource that this run creates or changes:
    /// `(id of rest_api pets-api, known after apply)`.
    KnownAfterApply { output: String, of: String },
    /// Not set at all.
    Absent,
}

impl Shown {
    /// `value` as a plan shows it: its `Debug` rendering, with an `Option`
    /// shown as what it holds, or `(none)`.
    pub fn of(value: impl fmt::Debug) -> Shown {
        let text = format!("{value:?}");
        if text == "None" {
            return Shown::Absent;
        }
        match text.strip_prefix("Some(").and_then(|inner| inner.strip_suffix(')')) {
            Some(inner) => Shown::Value(inner.to_owned()),
            None => Shown::Value(text),
        }
    }

    /// A value given as text (already rendered).
    pub fn text(value: impl Into<String>) -> Shown {
        Shown::Value(value.into())
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Value(value) => f.write_str(value),
            Shown::Sensitive => f.write_str(crate::stack::SENSITIVE),
            Shown::KnownAfterApply { output, of } => write!(f, "({output} of {of}{KNOWN_AFTER_APPLY}"),
            Shown::Absent => f.write_str(ABSENT),
        }
    }
}

impl From<Shown> for String {
    fn from(shown: Shown) -> String {
        shown.to_string()
    }
}

/// Read back from a saved plan's text.
impl From<String> for Shown {
    fn from(text: String) -> Shown {
        if text == crate::stack::SENSITIVE {
            return Shown::Sensitive;
        }
        if text == ABSENT {
            return Shown::Absent;
        }
        let reference = text.strip_prefix('(').and_then(|t| t.strip_suffix(KNOWN_AFTER_APPLY));
        match reference.and_then(|r| r.split_once(" of ")) {
            Some((output, of)) => Shown::KnownAfterApply { output: output.to_owned(), of: of.to_owned() },
            None => Shown::Value(text),
        }
    }
}

/// How a value that is not known yet ends.
const KNOWN_AFTER_APPLY: &str = ", known after apply)";
/// How a value that is not set shows.
const ABSENT: &str = "(none)";

impl From<&str> for Val {
    fn from(value: &str) -> Val {
        Val::Known(value.to_owned())
    }
}

impl From<String> for Val {
    fn from(value: String) -> Val {
        Val::Known(value)
    }
}

/// The values a resource offers to others (ids, ARNs), by name.
pub type Outputs = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no change",
        })
    }
}

/// One field that differs, rendered for display (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Shown,
    pub new: Shown,
    /// Set by the planner, not found by comparing (a new deployment because
    /// something else changed): kept when the executor re-reads before writing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

impl FieldChange {
    pub fn new(field: &str, old: impl fmt::Debug, new: impl fmt::Debug) -> FieldChange {
        FieldChange { field: field.to_owned(), old: Shown::of(old), new: Shown::of(new), forced: false }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub address: Address,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// A step the executor will not carry out because what AWS holds now is not
/// what the plan was made from: it would write something nobody reviewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "AWS changed since the plan: planned {planned}, now {now}; nothing was written to it. Plan again (`deployer \
     diff`, then `apply`) to review what it takes now"
)]
pub struct Moved {
    pub planned: String,
    pub now: String,
}

impl Step {
    /// Whether `now` (the action and fields a fresh read calls for) is still
    /// this step. A create that finds its resource as wanted (a killed run
    /// made it) is; so is a wait (`waits_only`: its update writes nothing)
    /// that finds AWS where it waited for it to be (a certificate issued
    /// since); forced fields (a redeployment) are the planner's and not
    /// compared; a planned field whose new value was "known after apply" may
    /// have turned out equal. Anything else that differs, in the action, the
    /// fields or a field's old value, is AWS having moved.
    pub fn deviation(&self, now: Action, fields: &[FieldChange], waits_only: bool) -> Option<Moved> {
        let planned: Vec<&FieldChange> = self.fields.iter().filter(|f| !f.forced).collect();
        let now_fields: Vec<&FieldChange> = fields.iter().filter(|f| !f.forced).collect();
        let moved = || Moved { planned: describe(self.action, &planned), now: describe(now, &now_fields) };
        match (self.action, now) {
            (Action::Create, Action::Create | Action::NoOp) => return None,
            (Action::Update, Action::NoOp) if waits_only => return None,
            (Action::Update, Action::Update | Action::NoOp) | (Action::Replace, Action::Replace) => {}
            _ => return Some(moved()),
        }
        let planned_as_found = now_fields.iter().all(|f| planned.iter().any(|p| p.field == f.field && p.old == f.old));
        let nothing_left_out = planned
            .iter()
            .all(|p| matches!(p.new, Shown::KnownAfterApply { .. }) || now_fields.iter().any(|f| f.field == p.field));
        (!(planned_as_found && nothing_left_out)).then(moved)
    }
}

/// `update of [a: 1 → 2]`, `create`, `no change`.
fn describe(action: Action, fields: &[&FieldChange]) -> String {
    if fields.is_empty() || action == Action::Create {
        return action.to_string();
    }
    let fields: Vec<String> = fields.iter().map(|f| format!("{}: {} → {}", f.field, f.old, f.new)).collect();
    format!("{action} of [{}]", fields.join(", "))
}

/// A plan, as printed and as saved. Steps are in dependency order; the
/// executor may run independent ones at the same time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// What makes `apply` refuse to go on (a truststore AWS warns about).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
    /// The DNS record a requested certificate still waits for, once ACM
    /// has named it: what someone (or the deployer, in a hosted zone) must
    /// create before the custom domain can be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_validation: Option<DnsValidation>,
    /// The secret variables this run was given no value for (a plan of a
    /// pull request): the authorizer's secret was not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
    /// The routes any valid token may call (`scopes: any_valid_token`):
    /// every plan names them, changed or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_valid_token: Vec<String>,
    /// What the stack leaves open or does not serve, said on every plan
    /// (execute-api kept on, IPv4 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The stack's resources it no longer wants but leaves, each with why
    /// (something outside the stack still needs it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_in_place: Vec<String>,
}

/// A certificate waiting for DNS validation, and the records it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsValidation {
    pub domain: String,
    pub certificate_arn: String,
    /// `PENDING_VALIDATION` while it waits.
    pub status: String,
    /// Where the deployer writes the records itself (`domain.hosted_zone_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone_id: Option<String>,
    pub records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl fmt::Display for DnsValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match &self.hosted_zone_id {
            Some(zone) => format!("the deployer writes it in hosted zone {zone}"),
            None => "create it in the domain's DNS".to_owned(),
        };
        writeln!(f, "DNS validation: ACM issues the certificate for {} once this record exists ({by}):", self.domain)?;
        for record in &self.records {
            writeln!(f, "    {} {} {}", record.name, record.kind, record.value)?;
        }
        Ok(())
    }
}

impl Plan {
    /// Steps other than no-ops.
    pub fn pending(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action != Action::NoOp)
    }

    pub fn has_changes(&self) -> bool {
        self.pending().next().is_some()
    }

    pub fn step(&self, address: &Address) -> Option<&Step> {
        self.steps.iter().find(|s| &s.address == address)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_changes() {
            writeln!(f, "No changes: AWS matches the stack.")?;
        }
        for step in self.pending() {
            let sign = match step.action {
                Action::Create => "+",
                Action::Update => "~",
                Action::Replace => "-/+",
                Action::Delete => "-",
                Action::NoOp => " ",
            };
            writeln!(f, "{sign:>3} {}", step.address)?;
            for field in &step.fields {
                writeln!(f, "        {}: {} → {}", field.field, field.old, field.new)?;
            }
        }
        if self.has_changes() {
            let count = |a: Action| self.steps.iter().filter(|s| s.action == a).count();
            writeln!(
                f,
                "Plan: {} to create, {} to update, {} to replace, {} to delete.",
                count(Action::Create),
                count(Action::Update),
                count(Action::Replace),
                count(Action::Delete)
            )?;
        }
        for blocker in &self.blockers {
            writeln!(f, "Blocked: {blocker}")?;
        }
        if let Some(validation) = &self.dns_validation {
            write!(f, "{validation}")?;
        }
        if !self.any_valid_token.is_empty() {
            writeln!(f, "Any valid token may call, with no scope (scopes: any_valid_token):")?;
            for route in &self.any_valid_token {
                writeln!(f, "    {route}")?;
            }
        }
        for warning in &self.warnings {
            writeln!(f, "Warning: {warning}")?;
        }
        for left in &self.left_in_place {
            writeln!(f, "Left in place: {left}")?;
        }
        if !self.not_compared.is_empty() {
            writeln!(
                f,
                "Not compared: the authorizer's secret ({}), which this run was given no value for.",
                self.not_compared.join(", ")
            )?;
        }
        Ok(())
    }
}

/// A plan written by `deployer plan --out`, with what it was made from, so
/// `deployer apply plan.json` can refuse when either moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Format of this file.
    pub format: u32,
    pub stack: String,
    pub account: String,
    pub region: String,
    /// SHA-256 of stack.yaml, the files it names (truststore) and the
    /// values of its `${env:…}` references, as read.
    pub stack_fingerprint: String,
    /// The authorizer's zip the plan uploads, kept beside the plan file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    pub plan: Plan,
}

/// The zip a saved plan was made with: `apply PLAN` uploads exactly it,
/// whatever the checkout it runs in would build (Rust builds differ from
/// runner to runner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its file name, in the plan file's directory.
    pub file: String,
    /// base64(SHA-256), as Lambda reports `CodeSha256`.
    pub sha256: String,
}

/// The saved plan's format; a plan saved in another is refused, naming both.
/// 3: values shown as a person reads them (`Shown`: `(none)`, no `Some(…)`).
pub const SAVED_PLAN_FORMAT: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, old: &str, new: &str) -> FieldChange {
        FieldChange { field: name.into(), old: old.to_owned().into(), new: new.to_owned().into(), forced: false }
    }

    fn step(action: Action, fields: Vec<FieldChange>) -> Step {
        Step { address: Address::new("stage", "prod"), action, fields }
    }

    #[test]
    fn a_step_binds_its_action_its_fields_and_their_old_values() {
        let planned = step(Action::Update, vec![field("variables", "{tier: gold}", "{tier: silver}")]);
        assert_eq!(planned.deviation(Action::Update, &planned.fields.clone(), false), None, "as planned");
        let more = [planned.fields[0].clone(), field("throttling", "50", "100")];
        let moved = planned.deviation(Action::Update, &more, false).expect("a field nobody reviewed");
        assert_eq!(moved.planned, "update of [variables: {tier: gold} → {tier: silver}]");
        assert!(moved.now.contains("throttling: 50 → 100"), "{moved}");
        assert!(moved.to_string().starts_with("AWS changed since the plan: planned update of [variables"), "{moved}");
        let other_old = [field("variables", "{tier: bronze}", "{tier: silver}")];
        assert!(planned.deviation(Action::Update, &other_old, false).is_some(), "the field moved under the plan");
        assert!(planned.deviation(Action::Update, &[], false).is_some(), "someone else made the change");
        assert_eq!(planned.deviation(Action::NoOp, &[], true), None, "a wait AWS finished since the plan");
        assert!(planned.deviation(Action::NoOp, &[], false).is_some(), "not a wait: someone else made it");
        assert!(planned.deviation(Action::Create, &[], false).is_some(), "it is gone");
        assert!(planned.deviation(Action::Replace, &planned.fields.clone(), false).is_some());

        let create = step(Action::Create, vec![]);
        assert_eq!(create.deviation(Action::Create, &[], false), None);
        assert_eq!(create.deviation(Action::NoOp, &[], false), None, "made as wanted by a run that was killed");
        assert!(create.deviation(Action::Update, &[field("a", "1", "2")], false).is_some(), "made otherwise");

        let forced = FieldChange { forced: true, ..field("deployment", "current", "new") };
        let redeploy = step(Action::Update, vec![forced.clone()]);
        assert_eq!(redeploy.deviation(Action::NoOp, &[], false), None, "the planner's redeployment is not compared");
        let later = step(Action::Update, vec![field("web_acl", "arn:1", "(arn of web_acl a, known after apply)")]);
        assert_eq!(later.deviation(Action::NoOp, &[], false), None, "a value known after apply may turn out equal");
    }

    #[test]
    fn values_show_as_a_person_reads_them_and_read_back_the_same() {
        assert_eq!(
            (Shown::of(None::<i32>).to_string(), Shown::of(Some(90)).to_string()),
            ("(none)".into(), "90".into())
        );
        assert_eq!(Shown::of("gold").to_string(), "\"gold\"");
        let later = Val::output(Address::new("rest_api", "pets"), "id").shown();
        assert_eq!(later.to_string(), "(id of rest_api pets, known after apply)");
        for shown in [Shown::Absent, Shown::Sensitive, later, Shown::of(Some("x")), Shown::of(300)] {
            assert_eq!(Shown::from(shown.to_string()), shown, "a saved plan reads back what it saved");
        }
    }
}
