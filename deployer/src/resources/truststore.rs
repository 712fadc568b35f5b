//! The mTLS truststore: a versioned, private S3 bucket and the PEM bundle in
//! it. Every upload makes a new object version; that version id is what the
//! custom domain's `truststoreVersion` points at, so a changed truststore
//! reaches API Gateway (overwriting the object alone would not).

use anyhow::Context as _;
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, PublicAccessBlockConfiguration, Tag,
    Tagging, VersioningConfiguration,
};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct Truststore {
    pub stack: String,
    pub bucket: String,
    pub key: String,
    pub pem: Vec<u8>,
}

#[derive(Debug)]
pub struct ObservedTruststore {
    pub owner: Option<String>,
    pub versioning: bool,
    pub public_access_blocked: bool,
    pub content_sha256: Option<String>,
    pub version_id: Option<String>,
}

impl Truststore {
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn sha256(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&self.pem))
    }

    async fn secure_bucket(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.s3
            .put_bucket_versioning()
            .bucket(&self.bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutBucketVersioning: {}", describe(&e)))?;
        aws.s3
            .put_public_access_block()
            .bucket(&self.bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutPublicAccessBlock: {}", describe(&e)))?;
        Ok(())
    }

    async fn upload(&self, aws: &Aws) -> anyhow::Result<()> {
        aws.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .body(ByteStream::from(self.pem.clone()))
            .content_type("application/x-pem-file")
            .metadata("sha256", self.sha256())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutObject: {}", describe(&e)))?;
        Ok(())
    }
}

impl Resource for Truststore {
    const KIND: &'static str = "truststore";
    type Observed = ObservedTruststore;

    fn id(&self) -> String {
        self.uri()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedTruststore>> {
        match aws.s3.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => anyhow::bail!("HeadBucket: {}", describe(&e)),
        }
        let owner = match aws.s3.get_bucket_tagging().bucket(&self.bucket).send().await {
            Ok(t) => t.tag_set().iter().find(|t| t.key() == OWNER_TAG).map(|t| t.value().to_owned()),
            Err(_) => None, // NoSuchTagSet: untagged, so not ours
        };
        let public_access_blocked = match aws.s3.get_public_access_block().bucket(&self.bucket).send().await {
            Ok(output) => output.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            }),
            Err(_) => false, // NoSuchPublicAccessBlockConfiguration
        };
        let (content_sha256, version_id) = match aws.s3.head_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(head) => (head.metadata().and_then(|m| m.get("sha256")).cloned(), head.version_id().map(str::to_owned)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => (None, None),
            Err(e) => anyhow::bail!("HeadObject: {}", describe(&e)),
        };
        let versioning = match aws.s3.get_bucket_versioning().bucket(&self.bucket).send().await {
            Ok(output) => output.status() == Some(&BucketVersioningStatus::Enabled),
            // An answer the SDK cannot read at all (no error code). moto 5.2.5
            // names the XML root `GetBucketVersioningResponse` where S3 says
            // `VersioningConfiguration`. The object's version id tells the
            // same thing for a bucket we upload to: S3 gives one only when
            // versioning is on ("null" otherwise).
            Err(e) if e.as_service_error().is_some_and(|s| s.code().is_none()) => {
                version_id.as_deref().is_some_and(|v| v != "null")
            }
            Err(e) => anyhow::bail!("GetBucketVersioning: {}", describe(&e)),
        };
        Ok(Some(ObservedTruststore { owner, versioning, public_access_blocked, content_sha256, version_id }))
    }

    fn diff(&self, o: &ObservedTruststore) -> Diff {
        let mut diff = Diff::default();
        diff.field("versioning", o.versioning, true);
        diff.field("public_access_blocked", o.public_access_blocked, true);
        diff.field("content_sha256", o.content_sha256.as_deref(), Some(self.sha256().as_str()));
        diff
    }

    fn owned_by(&self, o: &ObservedTruststore, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedTruststore> {
        let mut create = aws.s3.create_bucket().bucket(&self.bucket);
        if aws.region != "us-east-1" {
            // us-east-1 is the one region that refuses an explicit constraint.
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                    .build(),
            );
        }
        create.send().await.map_err(|e| anyhow::anyhow!("CreateBucket: {}", describe(&e)))?;
        aws.s3
            .put_bucket_tagging()
            .bucket(&self.bucket)
            .tagging(Tagging::builder().tag_set(Tag::builder().key(OWNER_TAG).value(&self.stack).build()?).build()?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutBucketTagging: {}", describe(&e)))?;
        self.secure_bucket(aws).await?;
        self.upload(aws).await?;
        self.find(aws).await?.context("truststore bucket missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedTruststore, _diff: &Diff) -> anyhow::Result<ObservedTruststore> {
        if !o.versioning || !o.public_access_blocked {
            self.secure_bucket(aws).await?;
        }
        if o.content_sha256.as_deref() != Some(self.sha256().as_str()) {
            self.upload(aws).await?;
        }
        self.find(aws).await?.context("truststore bucket vanished during update")
    }

    async fn delete(&self, aws: &Aws, _: &ObservedTruststore) -> anyhow::Result<()> {
        // A versioned bucket is empty only when every version and delete marker is gone.
        let versions = aws
            .s3
            .list_object_versions()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ListObjectVersions: {}", describe(&e)))?;
        let objects = versions
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(versions.delete_markers().iter().map(|m| (m.key(), m.version_id())));
        for (key, version) in objects {
            aws.s3
                .delete_object()
                .bucket(&self.bucket)
                .set_key(key.map(str::to_owned))
                .set_version_id(version.map(str::to_owned))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("DeleteObject: {}", describe(&e)))?;
        }
        match aws.s3.delete_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if crate::error::code(&e) == Some("NoSuchBucket") => Ok(()),
            Err(e) => anyhow::bail!("DeleteBucket: {}", describe(&e)),
        }
    }
}
