//! The mTLS truststore: a versioned, private S3 bucket and the PEM bundle in
//! it. Every upload makes a new object version; that version id is what the
//! custom domain's `truststoreVersion` points at, so a changed truststore
//! reaches API Gateway (overwriting the object alone would not).
//!
//! Observed after the domains: the bucket of a domain the stack no longer
//! declares is found through that domain's truststore URI.
//!
//! Creating the bucket and tagging it are two calls: an apply killed between
//! them leaves the bucket untagged. An untagged bucket of the stack's name
//! is the stack's to take back while it is empty (no object, no version);
//! one holding anything is someone else's and is refused.
//!
//! S3 may take a while after versioning is first enabled before every write
//! gets a version id. The first upload waits until `GetBucketVersioning`
//! says Enabled, and an upload answered without a version id (or with
//! "null": an unversioned object) is never handed to the domain: it is made
//! again until S3 versions it.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::account_domains;
use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::{Aws, buckets};
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs};
use crate::retry;

/// How long S3 may take to version every write after versioning is enabled
/// (S3 documents up to 15 minutes; unscaled).
const VERSIONING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub struct Truststore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub bucket: String,
    pub key: String,
    /// The PEM bundle (text).
    pub pem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub bucket: String,
    pub key: String,
    pub versioning: bool,
    pub public_access_blocked: bool,
    /// base64(SHA-256) of the bundle, from the object's metadata.
    pub content_sha256: Option<String>,
    pub version_id: Option<String>,
    /// Whether it carries the stack's tag (an untagged one is only ever
    /// observed as the stack's when it is empty).
    #[serde(default = "tagged_by_default")]
    pub tagged: bool,
}

fn tagged_by_default() -> bool {
    true
}

pub fn address(bucket: &str) -> Address {
    Address::new(Truststore::NAME, bucket)
}

fn sha256(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(pem.as_bytes()))
}

/// Reading the truststore object (a version of it): the deployer's own
/// reads, and API Gateway's, which it makes with the caller's credentials
/// on CreateDomainName and UpdateDomainName.
pub fn object_read(grants: &Grants<'_>) -> Statement {
    let objects: Vec<String> = grants
        .stack
        .domain
        .iter()
        .map(|d| format!("arn:{}:s3:::{}/{}", grants.arns.partition, d.truststore_bucket, d.truststore_key))
        .collect();
    Statement::allow("TruststoreObjectRead", Access::Read, &["s3:GetObject", "s3:GetObjectVersion"], objects)
}

/// `s3://bucket/key` → (bucket, key).
pub fn parse_uri(uri: &str) -> Option<(String, String)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    Some((bucket.to_owned(), key.to_owned()))
}

async fn read(aws: &Aws, stack: &str, bucket: &str, key: &str) -> anyhow::Result<Option<Found<State>>> {
    // All at once; when the bucket does not exist, the other answers are moot.
    let (exists, tagging, access, head, versioning) = tokio::join!(
        aws.s3.head_bucket().bucket(bucket).send(),
        aws.s3.get_bucket_tagging().bucket(bucket).send(),
        aws.s3.get_public_access_block().bucket(bucket).send(),
        aws.s3.head_object().bucket(bucket).key(key).send(),
        aws.s3.get_bucket_versioning().bucket(bucket).send(),
    );
    // A bare 403 to HeadBucket (sent with the account as expected owner):
    // the name is another account's (bucket names are global).
    if let Err(e) = &exists
        && e.raw_response().is_some_and(|r| r.status().as_u16() == 403)
    {
        anyhow::bail!(
            "S3 answers 403 for the truststore bucket {bucket}: it exists and belongs to another account (bucket \
             names are global across all accounts), or this account may not read it. Choose another \
             domain.truststore.bucket, e.g. {bucket}-{}",
            aws.account
        );
    }
    if exists.found("HeadBucket")?.is_none() {
        return Ok(None);
    }
    let owner = match tagging {
        Ok(t) => t.tag_set().iter().find(|t| t.key() == OWNER_TAG).map(|t| t.value().to_owned()),
        // Only this code means "no tags"; any other error (AccessDenied) is an error.
        Err(e) if crate::error::code(&e) == Some("NoSuchTagSet") => None,
        Err(e) => return Err(e).aws("GetBucketTagging"),
    };
    let public_access_blocked = match access {
        Ok(output) => output.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if crate::error::code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(e).aws("GetPublicAccessBlock"),
    };
    let (content_sha256, version_id) = match head.found("HeadObject")? {
        Some(head) => {
            (head.metadata().and_then(|m| m.get("sha256")).cloned(), versioned(head.version_id()).map(str::to_owned))
        }
        None => (None, None),
    };
    let versioning = versioning.aws("GetBucketVersioning")?.status() == Some(&BucketVersioningStatus::Enabled);
    let ownership = match owner.as_deref() {
        Some(owner) if owner == stack => Ownership::Owned,
        None if is_empty(aws, bucket).await? => Ownership::Owned,
        _ => Ownership::Foreign,
    };
    let state = State {
        tagged: owner.is_some(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        versioning,
        public_access_blocked,
        content_sha256,
        version_id,
    };
    Ok(Some(Found::new(bucket, ownership, state)))
}

/// Whether the bucket holds no object and no object version.
async fn is_empty(aws: &Aws, bucket: &str) -> anyhow::Result<bool> {
    let versions = aws.s3.list_object_versions().bucket(bucket).max_keys(1).send().await.aws("ListObjectVersions")?;
    Ok(versions.versions().is_empty() && versions.delete_markers().is_empty())
}

async fn tag(aws: &Aws, spec: &Spec) -> anyhow::Result<()> {
    let tag = Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?;
    aws.s3
        .put_bucket_tagging()
        .bucket(&spec.bucket)
        .tagging(Tagging::builder().tag_set(tag).build()?)
        .send()
        .await
        .aws("PutBucketTagging")?;
    Ok(())
}

/// Waits until S3 says versioning is on (it may not at once).
async fn wait_versioned(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    let waiting_for = format!("S3 to turn on versioning of bucket {bucket}");
    retry::wait_until(&waiting_for, VERSIONING_TIMEOUT, || async {
        let versioning = aws.s3.get_bucket_versioning().bucket(bucket).send().await.aws("GetBucketVersioning")?;
        Ok((versioning.status() == Some(&BucketVersioningStatus::Enabled)).then_some(()))
    })
    .await
}

async fn secure_bucket(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    let versioning = aws
        .s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send();
    let access = buckets::block_public_access(aws, bucket).send();
    let (versioning, access) = tokio::join!(versioning, access);
    versioning.aws("PutBucketVersioning")?;
    access.aws("PutPublicAccessBlock")?;
    Ok(())
}

/// Uploads the bundle until S3 answers with a version id: the domain can
/// only point at a version.
async fn upload(aws: &Aws, spec: &Spec) -> anyhow::Result<String> {
    let waiting_for = format!("S3 to version the upload of s3://{}/{}", spec.bucket, spec.key);
    retry::wait_until(&waiting_for, VERSIONING_TIMEOUT, || async {
        let output = aws
            .s3
            .put_object()
            .bucket(&spec.bucket)
            .key(&spec.key)
            .body(ByteStream::from(spec.pem.clone().into_bytes()))
            .content_type("application/x-pem-file")
            .metadata("sha256", sha256(&spec.pem))
            .send()
            .await
            .aws("PutObject")?;
        Ok(versioned(output.version_id()).map(str::to_owned))
    })
    .await
}

/// A version id the domain can point at: present, and not S3's "null" of
/// an object stored while versioning was not on yet.
fn versioned(version_id: Option<&str>) -> Option<&str> {
    version_id.filter(|v| !v.is_empty() && *v != "null")
}

super::kind::fields! {
    Versioning = "versioning",
    PublicAccessBlocked = "public_access_blocked",
    ContentSha256 = "content_sha256",
    VersionedObject = "versioned_object",
    OwnerTag = "owner_tag",
}

impl Kind for Truststore {
    const NAME: &'static str = "truststore";
    const DEPENDS_ON: &'static [&'static str] = &[];
    /// New contents are a new object version, which the domain must be told.
    const UPDATE_CHANGES: &'static [&'static str] = &["version_id"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(context
            .stack
            .domain
            .iter()
            .map(|d| Spec {
                stack: context.stack.name.clone(),
                bucket: d.truststore_bucket.clone(),
                key: d.truststore_key.clone(),
                pem: String::from_utf8_lossy(&d.truststore_pem).into_owned(),
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        spec.bucket.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::Versioning, state.versioning, true);
        diff.field(Field::PublicAccessBlocked, state.public_access_blocked, true);
        diff.field(Field::ContentSha256, state.content_sha256.as_deref(), Some(sha256(&spec.pem).as_str()));
        // An object stored while versioning was not on yet has no version a
        // domain can point at.
        diff.field(Field::VersionedObject, state.version_id.is_some(), true);
        diff.field(Field::OwnerTag, state.tagged, true);
        diff
    }

    fn outputs(state: &State) -> Outputs {
        let mut outputs: Outputs = [("uri".to_owned(), format!("s3://{}/{}", state.bucket, state.key))].into();
        if let Some(version) = &state.version_id {
            outputs.insert("version_id".to_owned(), version.clone());
        }
        outputs
    }

    /// The bucket of the stack file and its objects. The object API Gateway
    /// reads with the caller's credentials is declared by `domain_name`.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let Some(domain) = &grants.stack.domain else { return Vec::new() };
        let bucket = format!("arn:{}:s3:::{}", grants.arns.partition, domain.truststore_bucket);
        vec![
            Statement::allow(
                "TruststoreBucketRead",
                Access::Read,
                &[
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                    "s3:GetBucketVersioning",
                    "s3:GetBucketPublicAccessBlock",
                    "s3:GetBucketTagging",
                ],
                vec![bucket.clone()],
            ),
            Statement::allow(
                "TruststoreBucketWrite",
                Access::Write,
                &[
                    "s3:CreateBucket",
                    "s3:PutBucketVersioning",
                    "s3:PutBucketPublicAccessBlock",
                    "s3:PutBucketTagging",
                    "s3:DeleteBucket",
                ],
                vec![bucket.clone()],
            ),
            object_read(grants),
            Statement::allow(
                "TruststoreObjectsWrite",
                Access::Write,
                &["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                vec![format!("{bucket}/*")],
            ),
        ]
    }
}

impl KindIo for Truststore {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let mut places: Vec<(String, String)> =
            scope.desired.iter().map(|s| (s.bucket.clone(), s.key.clone())).collect();
        // And the truststores of the stack's domains that stack.yaml no
        // longer declares, to delete.
        for (_, truststore) in account_domains::owned(scope.aws, scope.shared, scope.stack).await? {
            if let Some(place) = truststore.as_deref().and_then(parse_uri)
                && !places.iter().any(|(bucket, _)| *bucket == place.0)
            {
                places.push(place);
            }
        }
        let reads = places.iter().map(|(bucket, key)| read(scope.aws, scope.stack, bucket, key));
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.bucket, &spec.key).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        match buckets::create(aws, &spec.bucket).send().await {
            // Made by this create, its first answer lost (S3 answers so
            // only to the bucket's own account).
            Err(e) if crate::error::already_exists(&e) => {}
            other => drop(other.aws("CreateBucket")?),
        }
        buckets::wait_visible(aws, &spec.bucket).await?;
        tag(aws, spec).await?;
        secure_bucket(aws, &spec.bucket).await?;
        wait_versioned(aws, &spec.bucket).await?;
        let version_id = Some(upload(aws, spec).await?);
        Ok(State {
            bucket: spec.bucket.clone(),
            key: spec.key.clone(),
            versioning: true,
            public_access_blocked: true,
            content_sha256: Some(sha256(&spec.pem)),
            version_id,
            tagged: true,
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        if diff.has(Field::OwnerTag) {
            tag(aws, spec).await?;
        }
        if diff.has(Field::Versioning) || diff.has(Field::PublicAccessBlocked) {
            secure_bucket(aws, &spec.bucket).await?;
            wait_versioned(aws, &spec.bucket).await?;
        }
        let mut state = State { versioning: true, public_access_blocked: true, tagged: true, ..state.clone() };
        if diff.has(Field::ContentSha256) || diff.has(Field::VersionedObject) {
            state.version_id = Some(upload(aws, spec).await?);
            state.content_sha256 = Some(sha256(&spec.pem));
        }
        Ok(state)
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        empty_and_delete_bucket(aws, &state.bucket).await
    }
}

/// Deletes every object version and delete marker, then the bucket: a
/// versioned bucket is empty only when all of them are gone.
pub async fn empty_and_delete_bucket(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    let Some(versions) = aws.s3.list_object_versions().bucket(bucket).send().await.found("ListObjectVersions")? else {
        return Ok(());
    };
    let objects = versions
        .versions()
        .iter()
        .map(|v| (v.key(), v.version_id()))
        .chain(versions.delete_markers().iter().map(|m| (m.key(), m.version_id())));
    for (key, version) in objects {
        aws.s3
            .delete_object()
            .bucket(bucket)
            .set_key(key.map(str::to_owned))
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
            .gone("DeleteObject")?;
    }
    aws.s3.delete_bucket().bucket(bucket).send().await.gone("DeleteBucket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    #[test]
    fn diff() {
        let spec = Spec { stack: "s".into(), bucket: "b".into(), key: "t.pem".into(), pem: "PEM".into() };
        let state = State {
            bucket: "b".into(),
            key: "t.pem".into(),
            versioning: true,
            public_access_blocked: true,
            content_sha256: Some(sha256("PEM")),
            version_id: Some("v1".into()),
            tagged: true,
        };
        let cases: &[Case<State>] = &[
            (|s| s.versioning = false, "versioning"),
            (|s| s.public_access_blocked = false, "public_access_blocked"),
            (|s| s.content_sha256 = Some(sha256("OLD")), "content_sha256"),
            (|s| s.content_sha256 = None, "content_sha256"),
            (|s| s.tagged = false, "owner_tag"),
            (|s| s.version_id = None, "versioned_object"),
        ];
        check_diff::<Truststore>(&spec, &state, cases);
        assert_eq!(parse_uri("s3://bucket/dir/key.pem"), Some(("bucket".into(), "dir/key.pem".into())));
    }

    #[test]
    fn only_a_real_version_id_is_handed_to_the_domain() {
        assert_eq!(versioned(Some("3HL4kqtJlcpXroDTDmJ")), Some("3HL4kqtJlcpXroDTDmJ"));
        for unversioned in [None, Some("null"), Some("")] {
            assert_eq!(versioned(unversioned), None, "{unversioned:?}");
        }
    }
}
