//! The custom domain's parts changed without an outage, against the
//! AWS-like layer (`e2e::aws_like`): a certificate in a terminal state is
//! replaced before it is deleted, a base path moves to another stage in
//! place, a domain's change in progress is waited out, and the truststore
//! is uploaded only once S3 versions it.

use e2e::aws_like::Behaviours;
use e2e::deploy::{TIME_SCALE, clients, edge_yaml, fresh_stack, must, shape, stack_yaml};
use e2e::moto::Proxy;
use e2e::server::{Recorded, Reply};

/// The certificate ARN a custom domain uses, read through the proxy (moto
/// keeps it; the layer keeps what moto does not).
async fn domain_certificate(proxy: &Proxy, domain: &str) -> String {
    let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
    let read = through_proxy.apigateway.get_domain_name().domain_name(domain).send().await.expect("the domain");
    read.regional_certificate_arn().expect("a certificate").to_owned()
}

/// The position of the first call `matches` picks.
fn first(calls: &[e2e::moto::Call], what: &str, matches: impl Fn(&e2e::moto::Call) -> bool) -> usize {
    calls.iter().position(matches).unwrap_or_else(|| panic!("no {what} in {:?}", operations(calls)))
}

fn operations(calls: &[e2e::moto::Call]) -> Vec<&str> {
    calls.iter().map(|c| c.service_operation.as_str()).collect()
}

/// The domain's certificate expired: a new one is requested, the domain
/// pointed at it, and only then is the old one deleted (ACM refuses to
/// delete a certificate a domain still uses, expired or not).
#[tokio::test]
async fn an_expired_certificate_is_replaced_before_it_is_deleted() {
    let name = "t-cut-cert";
    let domain = format!("api.{name}.example.com");
    let expired: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let known = expired.clone();
    // ACM reports the certificate EXPIRED once the test says so.
    let behaviours = Behaviours { acm_in_use: true, ..Behaviours::none(TIME_SCALE) };
    let proxy = Proxy::aws_like_rewriting(behaviours, move |request: &Recorded, reply: &mut Reply| {
        let Some(arn) = known.lock().unwrap().clone() else { return };
        if request.header("x-amz-target") != Some("CertificateManager.DescribeCertificate")
            || !request.body.contains(&arn)
        {
            return;
        }
        if let Ok(mut answer) = serde_json::from_str::<serde_json::Value>(&reply.body) {
            answer["Certificate"]["Status"] = serde_json::json!("EXPIRED");
            reply.body = answer.to_string();
        }
    })
    .await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let old = domain_certificate(&proxy, &domain).await;
    *expired.lock().unwrap() = Some(old.clone());

    let diff = must(&stack, &proxy, &["diff"]).await;
    assert!(diff.stdout.contains(&format!("+ certificate {domain}")), "{}", diff.stdout);
    assert!(diff.stdout.contains(&format!("- certificate {domain} ({old})")), "{}", diff.stdout);
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    let new = domain_certificate(&proxy, &domain).await;
    assert_ne!(new, old, "the domain uses the new certificate");
    let calls = proxy.calls();
    let requested = first(&calls, "RequestCertificate", |c| c.service_operation == "RequestCertificate");
    let pointed = first(&calls, "the domain's update", |c| {
        c.service_operation == format!("PATCH /domainnames/{domain}") && c.request.body.contains(&new)
    });
    let deleted = calls
        .iter()
        .rposition(|c| c.service_operation == "DeleteCertificate" && c.request.body.contains(&old))
        .expect("the old certificate was deleted");
    assert!(requested < pointed && pointed < deleted, "{:?}", operations(&calls));
    let aws = clients().await;
    let gone = aws.acm.describe_certificate().certificate_arn(&old).send().await;
    assert!(gone.is_err(), "the expired certificate is gone");
    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(shape(&aws, name).await, Vec::<String>::new());
}

/// A base path moved to another stage is updated in place: a delete and a
/// create would leave the path answering 404 in between.
#[tokio::test]
async fn a_base_path_moves_to_another_stage_without_being_deleted() {
    let name = "t-cut-path";
    let domain_only = format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\n"
    );
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = fresh_stack(name, &stack_yaml(name, &domain_only), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    stack.write("stack.yaml", stack_yaml(name, &domain_only).replace("  name: prod\n", "  name: live\n"));
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    let mapping = format!("/domainnames/api.{name}.example.com/basepathmappings");
    let changes = proxy.changes();
    assert!(changes.contains(&format!("PATCH {mapping}/v1")), "{changes:?}");
    assert!(!changes.iter().any(|c| c.starts_with(&format!("DELETE {mapping}"))), "{changes:?}");
    let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
    let read = through_proxy
        .apigateway
        .get_base_path_mapping()
        .domain_name(format!("api.{name}.example.com"))
        .base_path("v1")
        .send()
        .await
        .expect("the mapping");
    assert_eq!(read.stage(), Some("live"));
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);
    must(&stack, &proxy, &["teardown"]).await;
}

/// API Gateway reports a domain PENDING, then UPDATING, while a change is
/// in progress: the deployer waits each out, says so, and uses the domain
/// only once it is AVAILABLE.
#[tokio::test]
async fn a_domain_change_in_progress_is_waited_out_and_shown() {
    let name = "t-cut-status";
    let proxy = Proxy::aws_like(Behaviours { domain_updating: true, ..Behaviours::none(TIME_SCALE) }).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    let apply = must(&stack, &proxy, &["apply"]).await;
    assert!(apply.stderr.contains(&format!("domain api.{name}.example.com is PENDING")), "{}", apply.stderr);
    stack.write("truststore.pem", e2e::certs::Ca::new("Rotated Clients CA").pem);
    let rotate = must(&stack, &proxy, &["apply"]).await;
    assert!(rotate.stderr.contains(&format!("domain api.{name}.example.com is UPDATING")), "{}", rotate.stderr);
    assert!(proxy.behaviour_counts().get("domain_updating").is_some_and(|n| *n >= 2));
    let output = must(&stack, &proxy, &["output", "--json"]).await;
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("outputs");
    assert!(outputs["domain"]["status"].is_string(), "{outputs}");
    must(&stack, &proxy, &["teardown"]).await;
}

/// Right after versioning is enabled, S3 does not say so yet, and an upload
/// may go unversioned: the first upload waits for Enabled, an upload
/// answered without a version id is made again, and the domain gets a real
/// version.
#[tokio::test]
async fn the_truststore_is_handed_to_the_domain_only_once_s3_versions_it() {
    let name = "t-cut-version";
    let proxy = Proxy::aws_like(Behaviours { s3_versioning_lag: true, ..Behaviours::none(TIME_SCALE) }).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    let calls = proxy.calls();
    let bucket = format!("/{name}-truststore");
    let versioning =
        |c: &e2e::moto::Call| c.request.path.starts_with(&bucket) && c.request.path.contains("?versioning");
    let enabled = first(&calls, "PutBucketVersioning", |c| c.request.method == "PUT" && versioning(c));
    let uploads: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.request.method == "PUT" && c.request.path.starts_with(&format!("{bucket}/truststore.pem")))
        .map(|(i, _)| i)
        .collect();
    let checked = calls
        .iter()
        .enumerate()
        .skip(enabled)
        .filter(|(_, c)| c.request.method == "GET" && versioning(c))
        .map(|(i, _)| i)
        .next()
        .expect("versioning was read back");
    assert!(checked < uploads[0], "the first upload waits until S3 says Enabled");
    assert_eq!(uploads.len(), 2, "the unversioned upload was made again: {:?}", operations(&calls));
    let counts = proxy.behaviour_counts();
    assert!(counts.get("s3_versioning_lag").is_some_and(|n| *n >= 2), "{counts:?}");
    let create = calls.iter().find(|c| c.service_operation == "POST /domainnames").expect("CreateDomainName");
    let sent: serde_json::Value = serde_json::from_str(&create.request.body).unwrap();
    let aws = clients().await;
    let head = aws.s3.head_object().bucket(format!("{name}-truststore")).key("truststore.pem").send().await.unwrap();
    assert_eq!(sent["mutualTlsAuthentication"]["truststoreVersion"], head.version_id().unwrap());
    must(&stack, &proxy, &["teardown"]).await;
}
