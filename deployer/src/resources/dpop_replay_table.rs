//! The DynamoDB table every instance of the function records accepted DPoP
//! proofs in (`authorizer.dpop_replay_store: dynamodb`; the function's side
//! is `authorizer::replay_store`): a proof is accepted once, whichever
//! instance it reaches.
//!
//! The table is the store's shape and nothing more: key `proof` (a string),
//! on-demand capacity (no capacity to plan, no throttling at a steady
//! rate), TTL on `expires_at` (DynamoDB deletes expired proofs, at no
//! cost), encrypted at rest with DynamoDB's own key (what it holds is
//! hashes and times), and the stack's tag. The execution role may
//! `dynamodb:PutItem` on it and nothing else; the stack's setting writes
//! `DPOP_REPLAY_STORE=dynamodb:NAME` into the function's environment
//! (`stack/checks.rs`), and `lambda_function` depends on this kind, so the
//! table is there before the function uses it and is deleted only after
//! the function stopped.
//!
//! AWS facts it follows: a table is `CREATING` for seconds after
//! CreateTable, and TTL can be enabled only once it is `ACTIVE`, and changed
//! once an hour (a change refused for that is left for a later run); tags are
//! listed a few seconds after they are written (ListTagsOfResource is
//! eventually consistent), so a create waits until the stack's tag reads
//! back; DeleteTable refuses a table still `CREATING` or `UPDATING`
//! (`ResourceInUseException`), and the name is free again only once the
//! table is gone.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, SseSpecification, TableDescription,
    TableStatus, Tag, TimeToLiveSpecification, TimeToLiveStatus,
};
use serde::{Deserialize, Serialize};

use super::kind::{Context, Diff, Found, FunctionPolicy, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::{LeftForLater, SdkResult as _};
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Outputs, Shown};
use crate::retry::{self, Policy};
use crate::stack::names;
use authorizer::replay_store::{EXPIRY_ATTRIBUTE, KEY_ATTRIBUTE};

pub struct DpopReplayTable;

/// How the table's key, billing, TTL and encryption read in a plan.
const KEY: &str = "proof (S)";
const ON_DEMAND: &str = "PAY_PER_REQUEST";
const AWS_OWNED_KEY: &str = "AWS owned key";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub arn: String,
    /// `proof (S)`: the key attribute and its type.
    pub key: String,
    pub billing_mode: String,
    /// The TTL attribute while TTL is enabled (or being enabled); `None` otherwise.
    pub time_to_live: Option<String>,
    /// `AWS owned key`, or the KMS key someone set.
    pub encryption: String,
    pub tagged: bool,
}

/// A table being created, updated or deleted: retried until it is not.
const TABLE_IN_USE: Policy = Policy {
    waiting_for: "DynamoDB to finish with the table",
    codes: &["ResourceInUseException"],
    message: Some("in use"),
    budget: std::time::Duration::from_secs(600),
};

/// How long a table may take to become `ACTIVE`, its tag to read back, or to be gone.
const SETTLES: std::time::Duration = std::time::Duration::from_secs(600);

async fn read(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    let described = aws.dynamodb.describe_table().table_name(name).send().await.found("DescribeTable")?;
    let Some(table) = described.as_ref().and_then(|d| d.table()) else { return Ok(None) };
    // A table being deleted is gone for the plan (its name is free once it is).
    if table.table_status() == Some(&TableStatus::Deleting) {
        return Ok(None);
    }
    let arn = table.table_arn().unwrap_or_default().to_owned();
    let (key, billing_mode, encryption) = (key_of(table), billing_mode_of(table), encryption_of(table));
    let (ttl, tags) = tokio::join!(
        aws.dynamodb.describe_time_to_live().table_name(name).send(),
        aws.dynamodb.list_tags_of_resource().resource_arn(&arn).send(),
    );
    let ttl = ttl.aws("DescribeTimeToLive")?;
    let time_to_live = ttl.time_to_live_description().and_then(|d| {
        let on = matches!(d.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        on.then(|| d.attribute_name().unwrap_or_default().to_owned())
    });
    let tagged = tags.aws("ListTagsOfResource")?.tags().iter().any(|t| t.key() == OWNER_TAG && t.value() == stack);
    let state = State { name: name.to_owned(), arn, key, billing_mode, time_to_live, encryption, tagged };
    let ownership = if tagged { Ownership::Owned } else { Ownership::Foreign };
    Ok(Some(Found::new(name, ownership, state)))
}

/// `proof (S)`: each key attribute with its type (and `RANGE` for a sort key).
fn key_of(table: &TableDescription) -> String {
    let type_of = |name: &str| {
        let definition = table.attribute_definitions().iter().find(|d| d.attribute_name() == name);
        definition.map_or("?", |d| d.attribute_type().as_str())
    };
    let keys = table.key_schema().iter().map(|k| {
        let role = if k.key_type() == &KeyType::Range { ", RANGE" } else { "" };
        format!("{} ({}{role})", k.attribute_name(), type_of(k.attribute_name()))
    });
    keys.collect::<Vec<_>>().join(", ")
}

/// A table created on demand reports no billing summary until it was
/// switched once: then provisioned capacity says which it is.
fn billing_mode_of(table: &TableDescription) -> String {
    if let Some(mode) = table.billing_mode_summary().and_then(|b| b.billing_mode()) {
        return mode.as_str().to_owned();
    }
    let provisioned = table.provisioned_throughput().and_then(|p| p.write_capacity_units()).unwrap_or(0) > 0;
    if provisioned { "PROVISIONED" } else { ON_DEMAND }.to_owned()
}

/// DynamoDB's own key unless a KMS key is named.
fn encryption_of(table: &TableDescription) -> String {
    match table.sse_description().and_then(|s| s.kms_master_key_arn()) {
        Some(key) => format!("KMS {key}"),
        None => AWS_OWNED_KEY.to_owned(),
    }
}

/// Waits until the table is `ACTIVE` (created, or done updating).
async fn wait_active(aws: &Aws, name: &str) -> anyhow::Result<()> {
    retry::wait_until(&format!("DynamoDB table {name} to be ACTIVE"), SETTLES, || async {
        let described = aws.dynamodb.describe_table().table_name(name).send().await.aws("DescribeTable")?;
        Ok((described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active)).then_some(()))
    })
    .await
}

/// Turns TTL on for `expires_at`. DynamoDB allows one TTL change per table
/// per hour: within the hour of the last one (someone turned TTL off), the
/// step is left for a later run, which turns it on; the function records
/// proofs meanwhile (only their deletion waits).
async fn enable_ttl(aws: &Aws, name: &str) -> anyhow::Result<()> {
    let ttl = TimeToLiveSpecification::builder().enabled(true).attribute_name(EXPIRY_ATTRIBUTE).build()?;
    let update = aws.dynamodb.update_time_to_live().table_name(name).time_to_live_specification(ttl);
    match update.send().await {
        Ok(_) => Ok(()),
        Err(e) if crate::error::code(&e) == Some("ValidationException") && ttl_changed_recently(&e) => {
            Err(LeftForLater(format!(
                "DynamoDB table {name}: TTL was changed less than an hour ago and DynamoDB allows one change per \
                 hour; a run after that turns it on (proofs are recorded meanwhile, only their deletion waits)"
            ))
            .into())
        }
        Err(e) => Err(e).aws("UpdateTimeToLive"),
    }
}

/// DynamoDB's refusal of a second TTL change within its interval.
fn ttl_changed_recently<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &aws_sdk_dynamodb::error::SdkError<E, R>,
) -> bool {
    let message = error.as_service_error().and_then(|e| e.message()).unwrap_or_default();
    message.contains("multiple times")
}

fn owner_tag(stack: &str) -> anyhow::Result<Tag> {
    Ok(Tag::builder().key(OWNER_TAG).value(stack).build()?)
}

super::kind::fields! {
    Key = "key",
    BillingMode = "billing_mode",
    TimeToLive = "time_to_live",
    Encryption = "encryption",
    Tagged = "tagged",
}

impl Kind for DpopReplayTable {
    const NAME: &'static str = "dpop_replay_table";
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stack = &context.stack.name;
        let wanted = context.stack.authorizer.dpop_replay_table;
        Ok(wanted.then(|| Spec { stack: stack.clone(), name: names::dpop_replay_table(stack) }).into_iter().collect())
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    /// A key other than the store's cannot be changed in place: the table is
    /// replaced (it holds nothing that outlives a proof's window).
    fn diff(_spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::Key, Shown::text(&state.key), Shown::text(KEY));
        diff.replace = diff.has(Field::Key);
        diff.text(Field::BillingMode, Shown::text(&state.billing_mode), Shown::text(ON_DEMAND));
        let ttl = state.time_to_live.as_ref().map_or(Shown::Absent, Shown::text);
        diff.text(Field::TimeToLive, ttl, Shown::text(EXPIRY_ATTRIBUTE));
        diff.text(Field::Encryption, Shown::text(&state.encryption), Shown::text(AWS_OWNED_KEY));
        diff.field(Field::Tagged, state.tagged, true);
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone()), ("name".to_owned(), state.name.clone())].into()
    }

    /// Described by plans; created only tagged as the stack's, and only by
    /// a stack that asks for it; deleted by any (one that no longer asks
    /// prunes its table). The one table of the stack's name, nothing else.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let table = vec![grants.arns.dynamodb_table(&names::dpop_replay_table(grants.name()))];
        let mut statements = vec![
            Statement::allow(
                "DpopReplayTableRead",
                Access::Read,
                &["dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive", "dynamodb:ListTagsOfResource"],
                table.clone(),
            ),
            Statement::allow("DpopReplayTableRemoval", Access::Write, &["dynamodb:DeleteTable"], table.clone()),
        ];
        if grants.stack.authorizer.dpop_replay_table {
            statements.extend([
                grants.tagged_as_stack(
                    Statement::allow(
                        "DpopReplayTableCreate",
                        Access::Write,
                        &["dynamodb:CreateTable", "dynamodb:TagResource"],
                        table.clone(),
                    ),
                    &[OWNER_TAG],
                ),
                Statement::allow(
                    "DpopReplayTableWrite",
                    Access::Write,
                    &["dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive"],
                    table,
                ),
                grants.execution_role_inline_policy("ExecutionRoleRecordsDpopProofs"),
            ]);
        }
        statements
    }

    /// `dynamodb:PutItem` on its table, and nothing else: it never reads,
    /// updates or deletes an item (DynamoDB's TTL deletes them).
    fn function_policy(grants: &Grants<'_>) -> Option<FunctionPolicy> {
        grants.stack.authorizer.dpop_replay_table.then(|| FunctionPolicy {
            name: "record-dpop-proofs",
            statements: vec![Statement::allow(
                "FunctionRecordsDpopProofs",
                Access::Write,
                &["dynamodb:PutItem"],
                vec![grants.arns.dynamodb_table(&names::dpop_replay_table(grants.name()))],
            )],
        })
    }
}

impl KindIo for DpopReplayTable {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        // Looked for whether the stack wants it or not: one it no longer wants is removed.
        let name = names::dpop_replay_table(scope.stack);
        Ok(read(scope.aws, scope.stack, &name).await?.into_iter().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.name).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let key = KeySchemaElement::builder().attribute_name(KEY_ATTRIBUTE).key_type(KeyType::Hash).build()?;
        let attribute = AttributeDefinition::builder()
            .attribute_name(KEY_ATTRIBUTE)
            .attribute_type(ScalarAttributeType::S)
            .build()?;
        let tag = owner_tag(&spec.stack)?;
        // A table of the name still being deleted (a replacement, a
        // teardown a moment ago) holds the name until it is gone.
        let created = retry::retry(&TABLE_IN_USE, || {
            aws.dynamodb
                .create_table()
                .table_name(&spec.name)
                .key_schema(key.clone())
                .attribute_definitions(attribute.clone())
                .billing_mode(BillingMode::PayPerRequest)
                .sse_specification(SseSpecification::builder().enabled(false).build())
                .tags(tag.clone())
                .send()
        })
        .await;
        match created {
            // "Table already exists": made by this create (its first answer
            // lost), or a run a moment ago.
            Err(e) if crate::error::code(&e) == Some("ResourceInUseException") => {
                return super::kind::made_already::<Self>(aws, spec).await;
            }
            other => other.aws("CreateTable")?,
        };
        wait_active(aws, &spec.name).await?;
        enable_ttl(aws, &spec.name).await?;
        // The tag reads back a few seconds after it is written: until it
        // does, the table would read as someone else's.
        let waiting_for = format!("DynamoDB table {}'s tag to read back", spec.name);
        retry::wait_until(&waiting_for, SETTLES, || async {
            Ok(read(aws, &spec.stack, &spec.name).await?.filter(|f| f.state.tagged).map(|f| f.state))
        })
        .await
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        if diff.has(Field::BillingMode) || diff.has(Field::Encryption) {
            let mut update = aws.dynamodb.update_table().table_name(&spec.name);
            if diff.has(Field::BillingMode) {
                update = update.billing_mode(BillingMode::PayPerRequest);
            }
            if diff.has(Field::Encryption) {
                update = update.sse_specification(SseSpecification::builder().enabled(false).build());
            }
            update.send().await.aws("UpdateTable")?;
            wait_active(aws, &spec.name).await?;
        }
        if diff.has(Field::TimeToLive) {
            enable_ttl(aws, &spec.name).await?;
        }
        if diff.has(Field::Tagged) {
            let tag = aws.dynamodb.tag_resource().resource_arn(&state.arn).tags(owner_tag(&spec.stack)?);
            tag.send().await.aws("TagResource")?;
        }
        Ok(State {
            billing_mode: ON_DEMAND.to_owned(),
            time_to_live: Some(EXPIRY_ATTRIBUTE.to_owned()),
            encryption: AWS_OWNED_KEY.to_owned(),
            tagged: true,
            ..state.clone()
        })
    }

    /// Once DynamoDB lets it (not while `CREATING` or `UPDATING`), and waits
    /// until it is gone: the name is free for a create only then.
    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        let deleted = retry::retry(&TABLE_IN_USE, || aws.dynamodb.delete_table().table_name(&state.name).send()).await;
        deleted.gone("DeleteTable")?;
        retry::wait_until(&format!("DynamoDB table {} to be deleted", state.name), SETTLES, || async {
            let described = aws.dynamodb.describe_table().table_name(&state.name).send().await;
            Ok(described.found("DescribeTable")?.is_none().then_some(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::check_diff;

    fn state() -> State {
        State {
            name: "pets-dpop-replay".into(),
            arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/pets-dpop-replay".into(),
            key: KEY.into(),
            billing_mode: ON_DEMAND.into(),
            time_to_live: Some(EXPIRY_ATTRIBUTE.into()),
            encryption: AWS_OWNED_KEY.into(),
            tagged: true,
        }
    }

    #[test]
    fn diff() {
        let spec = Spec { stack: "pets".into(), name: "pets-dpop-replay".into() };
        check_diff::<DpopReplayTable>(
            &spec,
            &state(),
            &[
                (|s| s.billing_mode = "PROVISIONED".into(), "billing_mode"),
                (|s| s.time_to_live = None, "time_to_live"),
                (|s| s.encryption = "KMS arn:aws:kms:eu-west-1:123456789012:key/1".into(), "encryption"),
                (|s| s.tagged = false, "tagged"),
            ],
        );
        let mut other_key = state();
        other_key.key = "jti (S)".into();
        let diff = DpopReplayTable::diff(&spec, &other_key);
        assert!(diff.replace, "a key is not changed in place: {diff:?}");
    }
}
