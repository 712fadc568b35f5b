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
//! Adding a kind means its module and its line in `kinds!` below: its
//! permissions, dependencies and documentation are in the module
//! (`deployer policy` and `deployer kinds` read them from the registry).
//!
//! Modules never read stack.yaml: each derives its desired instances from
//! the validated [`crate::stack::Stack`] (`desired`).

use std::marker::PhantomData;

mod account_domains;
mod kind;
pub mod route53;
mod shared_reads;
pub mod waf;

/// Declares each kind's module and its place in [`REGISTRY`], one line each.
macro_rules! kinds {
    ($($module:ident::$kind:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every kind, once. The order does not matter: `DEPENDS_ON` does.
        pub static REGISTRY: &[&dyn DynKind] = &[$(&Registered::<$module::$kind>(PhantomData)),+];
    };
}

// Every kind: `module::Type`. Adding a kind is its module and its line here.
kinds! {
    permissions_boundary::PermissionsBoundary,
    iam_role::IamRole,
    log_group::LogGroup,
    authorizer_secret::AuthorizerSecret,
    dpop_replay_table::DpopReplayTable,
    lambda_function::LambdaFunction,
    rest_api::RestApi,
    api_authorizer::ApiAuthorizer,
    authorizer_permission::AuthorizerPermission,
    api_resource::ApiResource,
    api_route::ApiRoute,
    gateway_response::GatewayResponse,
    stage::Stage,
    certificate::Certificate,
    validation_record::ValidationRecord,
    certificate_validation::CertificateValidation,
    truststore::Truststore,
    domain_name::DomainName,
    base_path_mapping::BasePathMapping,
    alias_record::AliasRecord,
    ip_set::IpSet,
    web_acl::WebAcl,
    web_acl_association::WebAclAssociation,
    execute_api::ExecuteApi,
    access_log::AccessLog,
    stage_monitoring::StageMonitoring,
}

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

pub use kind::*;

/// What the roles the stack creates need when they run: every kind's
/// `role_permissions`, and its `function_policy` for the execution role
/// alone (the permissions boundary allows these and nothing else).
pub fn role_permissions(grants: &crate::grants::Grants<'_>) -> Vec<crate::grants::Statement> {
    let execution_role = grants.arns.role(&crate::stack::names::execution_role(grants.name()));
    let of_kind = |kind: &&dyn DynKind| {
        let function = kind.function_policy(grants).map(|policy| policy.statements).unwrap_or_default();
        let by_the_function =
            function.into_iter().map(|s| s.when("ArnEquals", "aws:PrincipalArn", execution_role.clone()));
        kind.role_permissions(grants).into_iter().chain(by_the_function).collect::<Vec<_>>()
    };
    REGISTRY.iter().flat_map(of_kind).collect()
}

/// What desired state is derived from, with what the registry knows of
/// every kind filled in.
pub fn context<'a>(
    stack: &'a crate::stack::Stack,
    account: &'a str,
    region: &'a str,
    partition: &'a str,
    package: Option<&'a crate::package::Package>,
) -> Context<'a> {
    let mut context = Context {
        stack,
        account,
        region,
        partition,
        package,
        role_permissions: Vec::new(),
        function_policies: Vec::new(),
    };
    let grants = context.grants();
    let (role_permissions, function_policies) =
        (role_permissions(&grants), REGISTRY.iter().filter_map(|k| k.function_policy(&grants)).collect());
    (context.role_permissions, context.function_policies) = (role_permissions, function_policies);
    context
}
