//! The contract every kind keeps: what it is ([`Kind`], pure: desired,
//! name, diff, blockers, outputs, and what it means for the graph), how it
//! reads and writes AWS ([`KindIo`]), and the same seen without its types
//! ([`DynPlan`] for the planner, which takes no [`Aws`], and [`DynKind`]),
//! with what they pass around ([`Found`], [`Diff`], [`Context`], [`Scope`],
//! [`Observation`]). The registry of kinds is `resources/mod.rs`; this
//! module names no kind.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aws::Aws;
use crate::grants::{Grants, Statement};
use crate::package::Package;
use crate::plan::{Address, FieldChange, Outputs, Shown};
use crate::stack::Stack;

pub use super::shared_reads::SharedReads;
pub use crate::stack::names::{HOSTED_ZONE_TAG, OWNER_TAG};

/// The write group of every kind that writes inside a REST API.
pub const REST_API_WRITES: Option<&str> = Some("rest_api");

/// AWS tags in the shape every service's builder takes.
pub fn owner_tags(stack: &str) -> std::collections::HashMap<String, String> {
    [(OWNER_TAG.to_owned(), stack.to_owned())].into()
}

/// Whose an existing resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Carries the stack's tag (or lives inside something that does).
    Owned,
    /// Named by the stack but not created by it (an adopted REST API and what
    /// is in it): configured when declared, never deleted.
    Adopted,
    /// Sits where the stack wants one of its own, without its tag: never
    /// touched; a stack that declares it is refused.
    Foreign,
}

/// One existing resource.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Found<S> {
    pub name: String,
    pub ownership: Ownership,
    pub state: S,
    /// The resource it lives in, for kinds that live inside another (a route
    /// in its REST API, a mapping in its domain).
    #[serde(default)]
    pub parent: Option<Address>,
}

impl<S> Found<S> {
    pub fn new(name: impl Into<String>, ownership: Ownership, state: S) -> Found<S> {
        Found { name: name.into(), ownership, state, parent: None }
    }

    pub fn inside(mut self, parent: Address) -> Found<S> {
        self.parent = Some(parent);
        self
    }
}

/// The fields of one kind: an enum each kind declares with [`fields!`], so
/// a diff and an update name fields the compiler knows, never free text.
pub trait Field: Copy + PartialEq + Debug + Send + Sync + 'static {
    /// Every field, for reading a field's name back (a saved plan, the
    /// executor's forced fields).
    const ALL: &'static [Self];
    /// The name a plan prints and saves.
    fn name(self) -> &'static str;
}

/// Declares a kind's field enum: `fields! { Name = "name", Tags = "tags" }`.
macro_rules! fields {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// The fields this kind's diff compares (as a plan names them).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field {
            $($variant),+
        }

        impl $crate::resources::kind::Field for Field {
            const ALL: &'static [Field] = &[$(Field::$variant),+];
            fn name(self) -> &'static str {
                match self {
                    $(Field::$variant => $name),+
                }
            }
        }
    };
}
pub(crate) use fields;

/// The fields of a diff seen without their kind (planner, executor, saved
/// plans): the names only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyField {}

impl Field for AnyField {
    const ALL: &'static [AnyField] = &[];
    fn name(self) -> &'static str {
        match self {}
    }
}

/// How an existing resource differs from the desired one, in the fields of
/// kind `F` ([`AnyField`]: of some kind, by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Diff<F = AnyField> {
    pub fields: Vec<FieldChange>,
    /// Some field cannot be changed in place: delete, then create.
    pub replace: bool,
    kind: PhantomData<F>,
}

impl<F> Default for Diff<F> {
    fn default() -> Self {
        Diff { fields: Vec::new(), replace: false, kind: PhantomData }
    }
}

impl<F> Diff<F> {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// What it takes: nothing, an update in place, or a replacement.
    pub fn action(&self) -> crate::plan::Action {
        use crate::plan::Action;
        match (self.is_empty(), self.replace) {
            (true, _) => Action::NoOp,
            (false, true) => Action::Replace,
            (false, false) => Action::Update,
        }
    }

    /// The same changes, by name only.
    pub fn erased(self) -> Diff<AnyField> {
        Diff { fields: self.fields, replace: self.replace, kind: PhantomData }
    }

    /// Whether a field of this name (or one of its keys, `environment.X`) is among the changes.
    pub fn has_name(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.field == name || f.field.strip_prefix(name).is_some_and(|k| k.starts_with('.')))
    }
}

impl<F: Field> Diff<F> {
    /// Records `field` if `observed != desired`.
    pub fn field<T: PartialEq + Debug>(&mut self, field: F, observed: T, desired: T) {
        if observed != desired {
            self.fields.push(FieldChange::new(field.name(), observed, desired));
        }
    }

    /// Like [`Diff::field`], for values shown as given: rendered text (read
    /// as a saved plan reads it: `(none)` is absent), or a [`Shown`].
    pub fn text(&mut self, field: F, observed: impl Into<Shown>, desired: impl Into<Shown>) {
        let (observed, desired) = (observed.into(), desired.into());
        if observed != desired {
            self.changed(field, None, observed, desired);
        }
    }

    /// Records a change the caller has already detected on the real values,
    /// shown with `old`/`new` as given: for secrets, whose masked renderings
    /// are equal even when the values differ. `key` names one entry of a
    /// map-valued field (`environment.ROUTES`).
    pub fn changed(&mut self, field: F, key: Option<&str>, old: impl Into<Shown>, new: impl Into<Shown>) {
        let name = match key {
            Some(key) => format!("{}.{key}", field.name()),
            None => field.name().to_owned(),
        };
        self.fields.push(FieldChange { field: name, old: old.into(), new: new.into(), forced: false });
    }

    /// Whether `field` (or one of its keys) is among the changes.
    pub fn has(&self, field: F) -> bool {
        self.has_name(field.name())
    }

    /// A diff of some kind, read as one of `F`: every field must be one of
    /// `F`'s (a saved plan or a planner's forced field naming another is an error).
    pub fn typed(diff: &Diff<AnyField>) -> anyhow::Result<Diff<F>> {
        for change in &diff.fields {
            let base = change.field.split('.').next().unwrap_or_default();
            anyhow::ensure!(F::ALL.iter().any(|f| f.name() == base), "no field {:?} in this kind", change.field);
        }
        Ok(Diff { fields: diff.fields.clone(), replace: diff.replace, kind: PhantomData })
    }
}

/// What desired state is derived from: the stack and what is known about the
/// account before anything is read.
pub struct Context<'a> {
    pub stack: &'a Stack,
    pub account: &'a str,
    pub region: &'a str,
    /// `aws`, `aws-cn` or `aws-us-gov`, for the ARNs the deployer builds.
    pub partition: &'a str,
    /// The authorizer's code; `None` when no desired state needs it.
    pub package: Option<&'a Package>,
    /// What the roles the stack creates need when they run, every kind's
    /// `role_permissions` (the registry fills it in: `resources::context`).
    pub role_permissions: Vec<Statement>,
    /// The execution role's inline policies, every kind's `function_policy`
    /// (the registry fills it in too).
    pub function_policies: Vec<FunctionPolicy>,
}

/// An inline policy of the function's execution role, given by the kind
/// whose resource the function uses when it runs (its secret, its replay
/// table): `iam_role` writes every kind's ([`Context::function_policies`]),
/// the registry adds it to the boundary (for the execution role alone), and
/// the kind's `permissions` let the pipeline write it
/// ([`Grants::execution_role_inline_policy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionPolicy {
    /// The inline policy's name in the role.
    pub name: &'static str,
    pub statements: Vec<Statement>,
}

impl Context<'_> {
    /// ARNs in the stack's partition, region and account.
    pub fn arns(&self) -> crate::stack::names::Arns<'_> {
        crate::stack::names::Arns { partition: self.partition, region: self.region, account: self.account }
    }

    /// What permission declarations are made from, for this stack and account.
    pub fn grants(&self) -> Grants<'_> {
        Grants { stack: self.stack, arns: self.arns() }
    }
}

/// What a kind's `observe` may use: the account, the stack's identity, the
/// kind's own desired instances (names to look for), the addresses of every
/// kind's desired instances, and the instances of the kinds it is observed
/// under.
pub struct Scope<'a, S> {
    pub aws: &'a Aws,
    pub stack: &'a str,
    pub desired: Vec<S>,
    pub declared: &'a [Address],
    pub parents: &'a Observation,
    /// Reads other kinds of this observation make too.
    pub shared: &'a SharedReads,
}

impl<S> Scope<'_, S> {
    /// The names the stack declares for `kind`.
    pub fn declared(&self, kind: &str) -> impl Iterator<Item = &str> {
        self.declared.iter().filter(move |a| a.kind == kind).map(|a| a.name.as_str())
    }
}

/// Everything observed so far, by kind.
#[derive(Debug, Default, Clone)]
pub struct Observation {
    pub found: BTreeMap<String, Vec<Found<Value>>>,
    /// When the reads began (`None` for observations made up in tests).
    pub read_at: Option<std::time::Instant>,
}

impl Observation {
    /// The instances of kind `K`, typed.
    pub fn of<K: Kind>(&self) -> Vec<Found<K::State>> {
        self.found
            .get(K::NAME)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let state = serde_json::from_value(f.state.clone()).ok()?;
                Some(Found { name: f.name.clone(), ownership: f.ownership, state, parent: f.parent.clone() })
            })
            .collect()
    }

    pub fn get(&self, address: &Address) -> Option<&Found<Value>> {
        self.found.get(&address.kind)?.iter().find(|f| f.name == address.name)
    }

    pub fn all(&self) -> impl Iterator<Item = (Address, &Found<Value>)> {
        self.found.iter().flat_map(|(kind, found)| found.iter().map(move |f| (Address::new(kind, &f.name), f)))
    }
}

/// Where a kind's resources sit, and what follows from it for pruning,
/// deployments and the order of steps: one value per kind, usually a preset
/// (`Placement { deletes_first: true, ..Placement::IN_REST_API_DEPLOYED }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Deleting its parent deletes it too: no step of its own then.
    pub deleted_with_parent: bool,
    /// A change takes effect only with a new deployment of the REST API.
    pub needs_deployment: bool,
    /// A deployment copies it (a method, a path resource, the authorizer, a
    /// gateway response): its deletes run before the stage's next
    /// deployment, or the stage would keep serving what was removed.
    pub snapshotted: bool,
    /// Creating or updating it deploys the REST API (the stage).
    pub deploys: bool,
    /// Its deletes run before its own creates: a removed variable path part
    /// must be gone before a sibling takes its place (API Gateway allows one
    /// per parent). Only for kinds nothing is re-pointed from.
    pub deletes_first: bool,
    /// Steps of kinds in the same group never run at the same time: API
    /// Gateway answers a write to a REST API that overlaps another with 409
    /// "concurrent modification" ([`REST_API_WRITES`]).
    pub write_group: Option<&'static str>,
}

impl Placement {
    /// A resource of its own: a role, a function, a certificate, a bucket.
    pub const STANDALONE: Placement = Placement {
        deleted_with_parent: false,
        needs_deployment: false,
        snapshotted: false,
        deploys: false,
        deletes_first: false,
        write_group: None,
    };
    /// Part of another resource, gone with it: a function's permission, a
    /// certificate's validation.
    pub const INSIDE: Placement = Placement { deleted_with_parent: true, ..Placement::STANDALONE };
    /// The REST API itself: written one call at a time with what is in it.
    pub const REST_API: Placement = Placement { write_group: REST_API_WRITES, ..Placement::STANDALONE };
    /// Part of a REST API that a deployment copies: a path, a method, the
    /// authorizer, a gateway response.
    pub const IN_REST_API_DEPLOYED: Placement = Placement {
        deleted_with_parent: true,
        needs_deployment: true,
        snapshotted: true,
        write_group: REST_API_WRITES,
        ..Placement::STANDALONE
    };
    /// A setting of the REST API or its stage, in effect at once: the access
    /// log, monitoring, the default endpoint.
    pub const API_SETTING: Placement =
        Placement { deleted_with_parent: true, write_group: REST_API_WRITES, ..Placement::STANDALONE };
}

pub use futures::future::BoxFuture;

/// One AWS resource kind, its pure half: what it is, what the stack wants
/// of it, how to compare. Implemented by each module with [`KindIo`]; the
/// planner sees it through [`DynPlan`], the executor through [`DynKind`].
pub trait Kind: Send + Sync + 'static {
    const NAME: &'static str;
    /// Kinds whose resources are created before this one's (and deleted after).
    const DEPENDS_ON: &'static [&'static str];
    /// Kinds observed first, because their states say where this one's are.
    const OBSERVED_UNDER: &'static [&'static str] = &[];
    /// Where its resources sit, and what follows for pruning, deployments
    /// and the executor's order: usually one of [`Placement`]'s presets.
    const PLACEMENT: Placement = Placement::STANDALONE;
    /// Outputs an update changes (a new truststore object has a new version):
    /// what refers to them is "known after apply" when this kind is updated.
    const UPDATE_CHANGES: &'static [&'static str] = &[];
    /// Why a resource of the stack's may read as someone else's, for the
    /// refusal that names it (empty: nothing to add).
    const FOREIGN_HINT: &'static str = "";
    /// Written only by an operator (`deployer bootstrap`), never by the
    /// pipeline: `apply` refuses to go on while one differs from the stack
    /// (blocked, naming the command), `teardown` leaves it, and `deployer
    /// policy` gives the pipeline its reads and denies its writes.
    const OPERATOR: bool = false;
    /// After a create, the executor reads the resource back (`find`) and
    /// keeps what AWS reports, so the re-plan after `apply` checks AWS, not
    /// the spec. Off only for kinds whose create already returns what AWS
    /// answered or read (each says why).
    const READ_BACK: bool = true;
    /// Its update writes nothing: it waits for AWS to get where the spec
    /// says (ACM issuing a certificate). A planned step of it that finds AWS
    /// there already is done: AWS moving as it was waited for to move is no
    /// change to the plan.
    const WAITS_ONLY: bool = false;
    type Spec: Serialize + DeserializeOwned + Clone + Debug + Send + Sync;
    type State: Serialize + DeserializeOwned + Clone + Debug + Send + Sync;
    /// The fields `diff` compares and `update` writes.
    type Field: Field;

    /// The instances the stack wants.
    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Self::Spec>>;
    /// The name of a desired instance (its address within the kind).
    fn name(spec: &Self::Spec) -> String;
    /// Pure: what differs. Normalise AWS's defaults when reading, not here.
    fn diff(spec: &Self::Spec, state: &Self::State) -> Diff<Self::Field>;
    /// What makes `apply` stop although the resource is as desired (AWS's
    /// warnings about a truststore, say).
    fn blockers(_spec: Option<&Self::Spec>, _state: &Self::State) -> Vec<String> {
        Vec::new()
    }
    /// Why a change the diff found must not be made unless the stack asks
    /// for it in so many words (it would cut clients off): `apply` is then
    /// blocked before any write, the message saying what to write.
    fn change_needs_consent(_spec: &Self::Spec, _state: &Self::State) -> Option<String> {
        None
    }
    /// Why one of the stack's resources that it no longer wants is left in
    /// place rather than deleted: something outside the stack still needs
    /// it (a validation record another certificate renews by). `None`:
    /// deleted as usual.
    fn left_in_place(_state: &Self::State) -> Option<String> {
        None
    }
    /// Values other resources refer to.
    fn outputs(state: &Self::State) -> Outputs;
    /// What IAM checks when the deployer observes, creates, updates and
    /// deletes this kind, its calls and what AWS checks beside them (tags
    /// sent with a create, a role handed to a service, reads AWS makes with
    /// the caller's credentials). `deployer policy` is made of these.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement>;
    /// What the roles the stack creates need from this kind when they run
    /// (the function writing its logs): the stack's permissions boundary
    /// allows these and nothing else.
    fn role_permissions(_grants: &Grants<'_>) -> Vec<Statement> {
        Vec::new()
    }
    /// The execution role's inline policy this kind gives the function, if
    /// the function uses its resource ([`FunctionPolicy`]).
    fn function_policy(_grants: &Grants<'_>) -> Option<FunctionPolicy> {
        None
    }
}

/// The I/O half of a kind: reading and writing AWS. Only observation and
/// the executor use it; the planner sees [`DynPlan`], which has none of it.
pub trait KindIo: Kind {
    /// Every instance the stack owns or adopted, and any look-alike where the
    /// stack wants one of its own.
    fn observe(scope: &Scope<'_, Self::Spec>) -> impl Future<Output = anyhow::Result<Vec<Found<Self::State>>>> + Send;
    /// The instance `spec` names, read again (before a write).
    fn find(aws: &Aws, spec: &Self::Spec) -> impl Future<Output = anyhow::Result<Option<Found<Self::State>>>> + Send;
    /// Creates it and waits until it is usable; returns what was read after.
    fn create(aws: &Aws, spec: &Self::Spec) -> impl Future<Output = anyhow::Result<Self::State>> + Send;
    /// Changes only `diff`'s fields, then waits until it is usable.
    fn update(
        aws: &Aws,
        spec: &Self::Spec,
        state: &Self::State,
        diff: &Diff<Self::Field>,
    ) -> impl Future<Output = anyhow::Result<Self::State>> + Send;
    /// Deletes it; "already gone" counts as success.
    fn delete(aws: &Aws, state: &Self::State) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A kind as the planner sees it: specs and states as JSON, so one registry
/// holds every kind and a plan can be saved. Nothing here takes [`Aws`]: the
/// planner, given only this, cannot call AWS.
pub trait DynPlan: Send + Sync {
    fn name(&self) -> &'static str;
    fn depends_on(&self) -> &'static [&'static str];
    fn observed_under(&self) -> &'static [&'static str];
    fn placement(&self) -> Placement;
    fn update_changes(&self) -> &'static [&'static str];
    fn read_back(&self) -> bool;
    fn waits_only(&self) -> bool;
    fn operator(&self) -> bool;
    fn foreign_hint(&self) -> &'static str;
    fn permissions(&self, grants: &Grants<'_>) -> Vec<Statement>;
    fn role_permissions(&self, grants: &Grants<'_>) -> Vec<Statement>;
    fn function_policy(&self, grants: &Grants<'_>) -> Option<FunctionPolicy>;
    fn desired(&self, context: &Context<'_>) -> anyhow::Result<Vec<(String, Value)>>;
    fn diff(&self, spec: &Value, state: &Value) -> anyhow::Result<Diff>;
    fn blockers(&self, spec: Option<&Value>, state: &Value) -> Vec<String>;
    fn change_needs_consent(&self, spec: &Value, state: &Value) -> anyhow::Result<Option<String>>;
    fn left_in_place(&self, state: &Value) -> anyhow::Result<Option<String>>;
    fn outputs(&self, state: &Value) -> anyhow::Result<Outputs>;
}

/// A kind as observation and the executor see it: [`DynPlan`] and the I/O.
pub trait DynKind: DynPlan {
    fn observe<'a>(
        &'a self,
        aws: &'a Aws,
        stack: &'a str,
        desired: Vec<Value>,
        declared: &'a [Address],
        parents: &'a Observation,
        shared: &'a SharedReads,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Found<Value>>>>;
    fn find<'a>(&'a self, aws: &'a Aws, spec: &'a Value) -> BoxFuture<'a, anyhow::Result<Option<Found<Value>>>>;
    fn create<'a>(&'a self, aws: &'a Aws, spec: &'a Value) -> BoxFuture<'a, anyhow::Result<Value>>;
    fn update<'a>(
        &'a self,
        aws: &'a Aws,
        spec: &'a Value,
        state: &'a Value,
        diff: &'a Diff,
    ) -> BoxFuture<'a, anyhow::Result<Value>>;
    fn delete<'a>(&'a self, aws: &'a Aws, state: &'a Value) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// [`Kind`] → [`DynKind`].
pub struct Registered<K>(pub(super) PhantomData<K>);

fn typed<T: DeserializeOwned>(kind: &str, what: &str, value: &Value) -> anyhow::Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| anyhow::anyhow!("{kind}: reading its {what}: {e}"))
}

fn json<T: Serialize>(value: &T) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(value)?)
}

fn found_json<S: Serialize>(found: Found<S>) -> anyhow::Result<Found<Value>> {
    Ok(Found { name: found.name, ownership: found.ownership, state: json(&found.state)?, parent: found.parent })
}

impl<K: Kind> DynPlan for Registered<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn depends_on(&self) -> &'static [&'static str] {
        K::DEPENDS_ON
    }
    fn observed_under(&self) -> &'static [&'static str] {
        K::OBSERVED_UNDER
    }
    fn placement(&self) -> Placement {
        K::PLACEMENT
    }
    fn update_changes(&self) -> &'static [&'static str] {
        K::UPDATE_CHANGES
    }
    fn read_back(&self) -> bool {
        K::READ_BACK
    }
    fn waits_only(&self) -> bool {
        K::WAITS_ONLY
    }
    fn operator(&self) -> bool {
        K::OPERATOR
    }
    fn foreign_hint(&self) -> &'static str {
        K::FOREIGN_HINT
    }
    fn permissions(&self, grants: &Grants<'_>) -> Vec<Statement> {
        K::permissions(grants)
    }
    fn role_permissions(&self, grants: &Grants<'_>) -> Vec<Statement> {
        K::role_permissions(grants)
    }
    fn function_policy(&self, grants: &Grants<'_>) -> Option<FunctionPolicy> {
        K::function_policy(grants)
    }

    fn desired(&self, context: &Context<'_>) -> anyhow::Result<Vec<(String, Value)>> {
        K::desired(context)?.iter().map(|spec| Ok((K::name(spec), json(spec)?))).collect()
    }

    fn diff(&self, spec: &Value, state: &Value) -> anyhow::Result<Diff> {
        Ok(K::diff(&typed(K::NAME, "spec", spec)?, &typed(K::NAME, "state", state)?).erased())
    }

    fn blockers(&self, spec: Option<&Value>, state: &Value) -> Vec<String> {
        let spec = spec.and_then(|s| typed::<K::Spec>(K::NAME, "spec", s).ok());
        match typed::<K::State>(K::NAME, "state", state) {
            Ok(state) => K::blockers(spec.as_ref(), &state),
            Err(e) => vec![e.to_string()],
        }
    }

    fn change_needs_consent(&self, spec: &Value, state: &Value) -> anyhow::Result<Option<String>> {
        let spec = typed::<K::Spec>(K::NAME, "spec", spec)?;
        Ok(K::change_needs_consent(&spec, &typed::<K::State>(K::NAME, "state", state)?))
    }

    fn left_in_place(&self, state: &Value) -> anyhow::Result<Option<String>> {
        Ok(K::left_in_place(&typed::<K::State>(K::NAME, "state", state)?))
    }

    fn outputs(&self, state: &Value) -> anyhow::Result<Outputs> {
        Ok(K::outputs(&typed(K::NAME, "state", state)?))
    }
}

impl<K: KindIo> DynKind for Registered<K> {
    fn observe<'a>(
        &'a self,
        aws: &'a Aws,
        stack: &'a str,
        desired: Vec<Value>,
        declared: &'a [Address],
        parents: &'a Observation,
        shared: &'a SharedReads,
    ) -> BoxFuture<'a, anyhow::Result<Vec<Found<Value>>>> {
        Box::pin(async move {
            let desired =
                desired.iter().map(|spec| typed::<K::Spec>(K::NAME, "spec", spec)).collect::<anyhow::Result<_>>()?;
            let scope = Scope { aws, stack, desired, declared, parents, shared };
            K::observe(&scope).await?.into_iter().map(found_json).collect()
        })
    }

    fn find<'a>(&'a self, aws: &'a Aws, spec: &'a Value) -> BoxFuture<'a, anyhow::Result<Option<Found<Value>>>> {
        Box::pin(async move {
            let spec: K::Spec = typed(K::NAME, "spec", spec)?;
            K::find(aws, &spec).await?.map(found_json).transpose()
        })
    }

    fn create<'a>(&'a self, aws: &'a Aws, spec: &'a Value) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move { json(&K::create(aws, &typed(K::NAME, "spec", spec)?).await?) })
    }

    fn update<'a>(
        &'a self,
        aws: &'a Aws,
        spec: &'a Value,
        state: &'a Value,
        diff: &'a Diff,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let diff = Diff::<K::Field>::typed(diff).map_err(|e| anyhow::anyhow!("{}: {e}", K::NAME))?;
            let state = K::update(aws, &typed(K::NAME, "spec", spec)?, &typed(K::NAME, "state", state)?, &diff).await?;
            json(&state)
        })
    }

    fn delete<'a>(&'a self, aws: &'a Aws, state: &'a Value) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { K::delete(aws, &typed(K::NAME, "state", state)?).await })
    }
}

/// What a create does when AWS answers that what it asks for exists
/// already: this create's first attempt made it (its answer was lost and
/// the SDK sent it again), or a run a moment ago did and a list that lags
/// hid it (WAF's, IAM's). Waits until `find` sees it, refuses it unless it
/// is the stack's, and brings it in line with `spec`.
pub async fn made_already<K: KindIo>(aws: &Aws, spec: &K::Spec) -> anyhow::Result<K::State> {
    let name = K::name(spec);
    let waiting_for = format!("{} {name}, which AWS says exists, to be listed", K::NAME);
    let found =
        crate::retry::wait_until(&waiting_for, crate::retry::MADE_ALREADY.budget, || K::find(aws, spec)).await?;
    anyhow::ensure!(found.ownership != Ownership::Foreign, "{} {name} exists and is not the stack's", K::NAME);
    let diff = K::diff(spec, &found.state);
    if diff.is_empty() { Ok(found.state) } else { K::update(aws, spec, &found.state, &diff).await }
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
