//! One module per AWS resource kind, all with the same shape (see
//! [`Resource`]): read what exists → compare with what the stack wants →
//! create, update or delete. Adding a kind means adding one module and one
//! line in `engine.rs`.
//!
//! Resource modules never read stack.yaml: they are given their desired state.

use crate::aws::Aws;
use crate::plan::FieldChange;

pub mod api_authorizer;
pub mod api_route;
pub mod base_path_mapping;
pub mod certificate;
pub mod domain_name;
pub mod gateway_response;
pub mod iam_role;
pub mod ip_set;
pub mod lambda_function;
pub mod rest_api;
pub mod stage;
pub mod truststore;
pub mod web_acl;
pub mod web_acl_association;

/// Tag carried by everything the deployer creates; teardown deletes only
/// what carries it with this stack's name.
pub const OWNER_TAG: &str = "oauth-gateway:stack";

/// How the observed state differs from the desired one.
#[derive(Debug, Default)]
pub struct Diff {
    pub fields: Vec<FieldChange>,
    /// Some field cannot be changed in place: delete, then create.
    pub replace: bool,
}

impl Diff {
    /// Records `field` if `observed != desired`.
    pub fn field<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, observed: T, desired: T) {
        if observed != desired {
            self.fields.push(FieldChange::new(field, observed, desired));
        }
    }

    /// Like [`Diff::field`], for values shown as given (already rendered text).
    pub fn text(&mut self, field: &str, observed: String, desired: String) {
        if observed != desired {
            self.fields.push(FieldChange { field: field.to_owned(), old: observed, new: desired });
        }
    }

    /// Records a change the caller has already detected on the real values,
    /// shown with `old`/`new` as given: for secrets, whose masked renderings
    /// are equal even when the values differ.
    pub fn changed(&mut self, field: &str, old: String, new: String) {
        self.fields.push(FieldChange { field: field.to_owned(), old, new });
    }
}

/// A desired resource of one kind.
#[allow(async_fn_in_trait)] // used with static dispatch only, inside this crate
pub trait Resource {
    const KIND: &'static str;
    type Observed;

    /// The name shown in plans and errors.
    fn id(&self) -> String;
    /// What exists now; `Ok(None)` when it does not exist.
    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<Self::Observed>>;
    /// Pure: what differs. Normalise AWS's defaults in `find`, not here.
    fn diff(&self, observed: &Self::Observed) -> Diff;
    /// Whether an existing resource of this name belongs to `stack`.
    fn owned_by(&self, observed: &Self::Observed, stack: &str) -> bool;
    /// Creates it and waits until it is usable.
    async fn create(&self, aws: &Aws) -> anyhow::Result<Self::Observed>;
    /// Changes only `diff`'s fields, then waits until it is usable.
    async fn update(&self, aws: &Aws, observed: &Self::Observed, diff: &Diff) -> anyhow::Result<Self::Observed>;
    /// Deletes it; "already gone" counts as success.
    async fn delete(&self, aws: &Aws, observed: &Self::Observed) -> anyhow::Result<()>;
}

/// AWS tags in the shape every service's builder takes.
pub fn owner_tags(stack: &str) -> std::collections::HashMap<String, String> {
    [(OWNER_TAG.to_owned(), stack.to_owned())].into()
}
