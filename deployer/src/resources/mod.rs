//! One module per AWS resource kind, all with the same shape ([`Kind`]):
//! what the stack wants of it (`Spec`), what AWS has (`State`), how to find
//! every instance the stack owns (`observe`) or one by its spec (`find`), how
//! the two differ (`diff`, pure), and how to `create`, `update` (only the
//! fields that differ) and `delete` one.
//!
//! Each kind implements two traits, the contract in `kind.rs`: [`Kind`],
//! pure (desired, name, diff, blockers, outputs, and what it means for the
//! graph), and [`KindIo`] (observe, find, create, update, delete). The
//! planner is given kinds as [`DynPlan`], which has no method that takes
//! `Aws`: that it makes no AWS call is a fact of its types, not a
//! convention.
//!
//! [`REGISTRY`] lists every kind once, with its dependencies: the graph the
//! planner orders steps by, the executor runs forward (creates, updates) and
//! in reverse (deletes), and teardown is a plan with nothing desired.
//! Adding a kind means a module and its line in [`REGISTRY`], plus what the
//! kind needs elsewhere (ARCHITECTURE.md lists it; `tests/tidy.rs` checks it).
//!
//! Modules never read stack.yaml: each derives its desired instances from
//! the validated [`crate::stack::Stack`] (`desired`).

use std::marker::PhantomData;

pub mod access_log;
pub mod alias_record;
pub mod api_authorizer;
pub mod api_resource;
pub mod api_route;
pub mod authorizer_permission;
pub mod authorizer_secret;
pub mod base_path_mapping;
pub mod certificate;
pub mod certificate_validation;
pub mod domain_name;
pub mod execute_api;
pub mod gateway_response;
pub mod iam_role;
pub mod ip_set;
mod kind;
pub mod lambda_function;
pub mod log_group;
pub mod permissions_boundary;
pub mod rest_api;
pub mod route53;
mod shared_reads;
pub mod stage;
pub mod truststore;
pub mod validation_record;
pub mod waf;
pub mod web_acl;
pub mod web_acl_association;

/// Every kind, once. The order does not matter: `DEPENDS_ON` does.
pub static REGISTRY: &[&dyn DynKind] = &[
    &Registered::<permissions_boundary::PermissionsBoundary>(PhantomData),
    &Registered::<iam_role::IamRole>(PhantomData),
    &Registered::<log_group::LogGroup>(PhantomData),
    &Registered::<authorizer_secret::AuthorizerSecret>(PhantomData),
    &Registered::<lambda_function::LambdaFunction>(PhantomData),
    &Registered::<rest_api::RestApi>(PhantomData),
    &Registered::<api_authorizer::ApiAuthorizer>(PhantomData),
    &Registered::<authorizer_permission::AuthorizerPermission>(PhantomData),
    &Registered::<api_resource::ApiResource>(PhantomData),
    &Registered::<api_route::ApiRoute>(PhantomData),
    &Registered::<gateway_response::GatewayResponse>(PhantomData),
    &Registered::<stage::Stage>(PhantomData),
    &Registered::<certificate::Certificate>(PhantomData),
    &Registered::<validation_record::ValidationRecord>(PhantomData),
    &Registered::<certificate_validation::CertificateValidation>(PhantomData),
    &Registered::<truststore::Truststore>(PhantomData),
    &Registered::<domain_name::DomainName>(PhantomData),
    &Registered::<base_path_mapping::BasePathMapping>(PhantomData),
    &Registered::<alias_record::AliasRecord>(PhantomData),
    &Registered::<ip_set::IpSet>(PhantomData),
    &Registered::<web_acl::WebAcl>(PhantomData),
    &Registered::<web_acl_association::WebAclAssociation>(PhantomData),
    &Registered::<execute_api::ExecuteApi>(PhantomData),
    &Registered::<access_log::AccessLog>(PhantomData),
];

/// The registered kind called `name`, with its I/O: for observation and
/// the executor.
pub fn kind(name: &str) -> anyhow::Result<&'static dyn DynKind> {
    REGISTRY.iter().copied().find(|k| k.name() == name).ok_or_else(|| anyhow::anyhow!("unknown resource kind {name:?}"))
}

/// The registered kind called `name`, its pure half only: for the planner,
/// the executor's order and the graph.
pub fn plan_kind(name: &str) -> anyhow::Result<&'static dyn DynPlan> {
    Ok(kind(name)?)
}

/// The write group of every kind that writes inside a REST API.
pub const REST_API_WRITES: Option<&str> = Some("rest_api");

pub use crate::stack::names::{HOSTED_ZONE_TAG, OWNER_TAG};
pub(crate) use kind::fields;
pub use kind::*;
pub use shared_reads::SharedReads;

/// AWS tags in the shape every service's builder takes.
pub fn owner_tags(stack: &str) -> std::collections::HashMap<String, String> {
    [(OWNER_TAG.to_owned(), stack.to_owned())].into()
}

/// Table tests of a kind's `diff`, shared by every kind's module.
#[cfg(test)]
pub(crate) mod testing {
    use super::Kind;

    /// A change made to a matching state, and the one field the diff must report then.
    pub type Case<S> = (fn(&mut S), &'static str);

    /// `spec` and `state` match; each case changes the state, after which
    /// the diff must name exactly its field, and never ask for a replacement.
    pub fn check_diff<K: Kind>(spec: &K::Spec, state: &K::State, cases: &[Case<K::State>]) {
        assert!(K::diff(spec, state).is_empty(), "{}: a matching state differs: {:?}", K::NAME, K::diff(spec, state));
        for (change, field) in cases {
            let mut changed = state.clone();
            change(&mut changed);
            let diff = K::diff(spec, &changed);
            let fields: Vec<&str> = diff.fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(fields, [*field], "{}: {changed:?}", K::NAME);
            assert!(!diff.replace, "{}: {field} is changed in place", K::NAME);
        }
    }
}
