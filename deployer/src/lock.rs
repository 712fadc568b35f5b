//! One `apply` or `teardown` of a stack at a time, across machines: a lock
//! with a lease, held as an S3 object written with a conditional put (as
//! Terraform's S3 backend does).
//!
//! - Taking it: `PutObject` with `If-None-Match: *` succeeds for one writer
//!   only. A lock whose lease has run out (its holder crashed) is taken over
//!   with `If-Match` on the ETag that was read, so two waiters cannot both.
//! - Holding it: the lease is renewed (again with `If-Match`) every third of
//!   its length; a renewal that fails means someone took the lock over, and
//!   the run stops starting steps.
//! - Waiting: a bounded time, then an error naming the holder.
//!
//! The bucket (`oauth-gateway-{account}-{region}`, private) holds one lock
//! object per stack; it is created on first use and deleted by the teardown
//! that leaves it empty.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::aws::{Aws, buckets};
use crate::error::{SdkResult as _, code};
use crate::grants::{Access, Grants, Statement};

/// Who holds a lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `user@host pid N (command)`.
    pub holder: String,
    /// Tells this run's lease from a later one of the same holder.
    pub run: String,
    pub acquired_at: u64,
    pub expires_at: u64,
}

/// How long a lease lasts and how long to wait for one.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease: Duration,
    pub wait: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { lease: Duration::from_secs(60), wait: Duration::from_secs(300) }
    }
}

/// A held lock. Call [`Held::release`] when done; a lock that is dropped
/// instead (a crash) runs out with its lease.
pub struct Held {
    aws: Aws,
    bucket: String,
    key: String,
    etag: Arc<Mutex<String>>,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

pub fn bucket_name(aws: &Aws) -> String {
    crate::stack::names::lock_bucket(&aws.account, &aws.region)
}

/// The stack's lock object in it.
pub fn key(stack: &str) -> String {
    format!("locks/{stack}.json")
}

/// What taking, renewing and releasing the lock takes (only `apply` and
/// `teardown` lock): the bucket of the account and region, and the stack's
/// own object in it.
pub fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
    let a = &grants.arns;
    let bucket = format!("arn:{}:s3:::{}", a.partition, crate::stack::names::lock_bucket(a.account, a.region));
    vec![
        Statement::allow(
            "LockBucket",
            Access::Write,
            &["s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:ListBucket"],
            vec![bucket.clone()],
        ),
        Statement::allow(
            "StackLock",
            Access::Write,
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            vec![format!("{bucket}/{}", key(grants.name()))],
        ),
    ]
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn holder(command: &str) -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{user}@{host} pid {} ({command})", std::process::id())
}

/// Takes the stack's lock, waiting at most `timing.wait` for its holder.
pub async fn acquire(aws: &Aws, stack: &str, command: &str, timing: Timing) -> anyhow::Result<Held> {
    let bucket = bucket_name(aws);
    let key = key(stack);
    let run = format!("{:x}", rand_u64());
    let started = std::time::Instant::now();
    let mut announced = false;
    let mut bucket_is_new = false;
    loop {
        let lease = Lease {
            holder: holder(command),
            run: run.clone(),
            acquired_at: now(),
            expires_at: now() + timing.lease.as_secs(),
        };
        let taken = if std::mem::take(&mut bucket_is_new) {
            // A new bucket's public access is blocked while the lock is taken.
            let (taken, blocked) =
                tokio::join!(put(aws, &bucket, &key, &lease, Condition::Absent), block_public_access(aws, &bucket));
            blocked?;
            taken
        } else {
            put(aws, &bucket, &key, &lease, Condition::Absent).await
        };
        match taken {
            Ok(etag) => return Ok(Held::start(aws, bucket, key, lease, etag, timing)),
            Err(PutError::NoBucket) => {
                create_bucket(aws, &bucket).await?;
                bucket_is_new = true;
            }
            Err(PutError::Other(e)) => return Err(e),
            Err(PutError::Precondition) => {
                let Some((current, etag)) = read(aws, &bucket, &key).await? else { continue };
                if current.run == run {
                    // This run's own put, whose first answer was lost (the
                    // SDK sent it again, and S3 refused the second).
                    return Ok(Held::start(aws, bucket, key, current, etag, timing));
                }
                if current.expires_at < now() {
                    eprintln!("  taking over the lock of stack {stack:?}: the lease of {} ran out", current.holder);
                    match put(aws, &bucket, &key, &lease, Condition::Etag(etag)).await {
                        Ok(etag) => return Ok(Held::start(aws, bucket, key, lease, etag, timing)),
                        Err(PutError::Precondition) => continue, // someone else took it first
                        Err(PutError::NoBucket) => continue,
                        Err(PutError::Other(e)) => return Err(e),
                    }
                }
                if started.elapsed() >= timing.wait {
                    anyhow::bail!(
                        "stack {stack:?} is locked by {} (since {}, lease until {}); waited {}s. Run again once it is \
                         done; a crashed holder's lease runs out by itself",
                        current.holder,
                        current.acquired_at,
                        current.expires_at,
                        timing.wait.as_secs()
                    );
                }
                if !announced {
                    eprintln!("  waiting for the lock of stack {stack:?}, held by {}", current.holder);
                    announced = true;
                }
                tokio::time::sleep(Duration::from_millis(500).min(timing.wait)).await;
            }
        }
    }
}

impl Held {
    fn start(aws: &Aws, bucket: String, key: String, lease: Lease, etag: String, timing: Timing) -> Held {
        let etag = Arc::new(Mutex::new(etag));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer =
            tokio::spawn(renew(aws.clone(), bucket.clone(), key.clone(), lease, etag.clone(), lost.clone(), timing));
        Held { aws: aws.clone(), bucket, key, etag, lost, renewer }
    }

    /// Set when a renewal found the lock taken over: stop starting steps.
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Gives the lock back (unless it was lost: then it is someone else's).
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewer.abort();
        if self.lost.load(Ordering::SeqCst) {
            anyhow::bail!("the lock was taken over while this run held it (its lease was not renewed in time)");
        }
        let _etag = self.etag.lock().await;
        self.aws.s3.delete_object().bucket(&self.bucket).key(&self.key).send().await.gone("DeleteObject (lock)")
    }
}

async fn renew(
    aws: Aws,
    bucket: String,
    key: String,
    mut lease: Lease,
    etag: Arc<Mutex<String>>,
    lost: Arc<AtomicBool>,
    timing: Timing,
) {
    loop {
        tokio::time::sleep(timing.lease / 3).await;
        let mut current = etag.lock().await;
        lease.expires_at = now() + timing.lease.as_secs();
        let renewed = match put(&aws, &bucket, &key, &lease, Condition::Etag(current.clone())).await {
            // This renewal's first answer was lost: the lease is ours, at a new ETag.
            Err(PutError::Precondition) => match read(&aws, &bucket, &key).await {
                Ok(Some((stored, etag))) if stored == lease => Ok(etag),
                _ => Err(PutError::Precondition),
            },
            other => other,
        };
        match renewed {
            Ok(next) => *current = next,
            Err(PutError::Precondition) | Err(PutError::NoBucket) => {
                eprintln!("  the lock was taken over by another run; stopping");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A transient failure: try again at the next tick (the lease has two more).
            Err(PutError::Other(e)) => eprintln!("  renewing the lock failed, retrying: {e:#}"),
        }
    }
}

enum Condition {
    /// Only if there is no lock object.
    Absent,
    /// Only if the lock object is still this version.
    Etag(String),
}

enum PutError {
    Precondition,
    NoBucket,
    Other(anyhow::Error),
}

async fn put(aws: &Aws, bucket: &str, key: &str, lease: &Lease, condition: Condition) -> Result<String, PutError> {
    let body = serde_json::to_vec(lease).map_err(|e| PutError::Other(e.into()))?;
    let mut request =
        aws.s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body)).content_type("application/json");
    request = match condition {
        Condition::Absent => request.if_none_match("*"),
        Condition::Etag(etag) => request.if_match(etag),
    };
    match request.send().await {
        Ok(output) => Ok(output.e_tag().unwrap_or_default().to_owned()),
        Err(e) => match code(&e) {
            // 409 ConditionalRequestConflict: another conditional write raced this one.
            Some("PreconditionFailed" | "ConditionalRequestConflict") => Err(PutError::Precondition),
            Some("NoSuchBucket") => Err(PutError::NoBucket),
            // If-Match on an object that is gone.
            Some("NoSuchKey") => Err(PutError::Precondition),
            // Sent with the account as expected owner: another account's bucket.
            _ if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Err(PutError::Other(anyhow::anyhow!(
                "S3 answers 403 for the deployer's lock bucket {bucket}: it belongs to another account (bucket \
                 names are global), or this role may not use it ({})",
                crate::error::describe(&e)
            ))),
            _ => Err(PutError::Other(anyhow::anyhow!("PutObject (lock): {}", crate::error::describe(&e)))),
        },
    }
}

/// The current lease and its ETag, if there is a lock object.
async fn read(aws: &Aws, bucket: &str, key: &str) -> anyhow::Result<Option<(Lease, String)>> {
    let Some(object) = aws.s3.get_object().bucket(bucket).key(key).send().await.found("GetObject (lock)")? else {
        return Ok(None);
    };
    let etag = object.e_tag().unwrap_or_default().to_owned();
    let body = object.body.collect().await.map_err(|e| anyhow::anyhow!("reading the lock: {e}"))?.into_bytes();
    let lease: Lease =
        serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("the lock object is not a lease: {e}"))?;
    Ok(Some((lease, etag)))
}

async fn create_bucket(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    match buckets::create(aws, bucket).send().await {
        // Another run created it a moment ago.
        Err(e) if code(&e) == Some("BucketAlreadyOwnedByYou") => {}
        other => other.map(drop).aws(&format!("CreateBucket {bucket} (for the deployer's locks)"))?,
    }
    crate::aws::buckets::wait_visible(aws, bucket).await
}

async fn block_public_access(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
    buckets::block_public_access(aws, bucket).send().await.aws("PutPublicAccessBlock (lock bucket)")?;
    Ok(())
}

/// A random run id: the clock's nanoseconds mixed with the process id.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
    hasher.write_u32(std::process::id());
    hasher.finish()
}
