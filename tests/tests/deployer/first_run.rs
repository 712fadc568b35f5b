//! What a first real deployment meets that moto does not show, each behind
//! its switch in the AWS-like layer: a certificate ACM refuses to issue
//! (FAILED, with its reason), a bucket S3 does not show right after making
//! it, and a bucket name another account already holds.

use e2e::aws_like::Behaviours;
use e2e::deploy::{TIME_SCALE, deployer, edge_yaml, env, fresh_stack, stack_yaml};
use e2e::moto::Proxy;

/// The RequestCertificate calls the proxy saw.
fn requests_for_certificates(proxy: &Proxy) -> usize {
    proxy.calls().iter().filter(|call| call.service_operation == "RequestCertificate").count()
}

/// A CAA record naming another CA makes ACM fail the request. The run stops
/// and says why; the next run does not ask ACM again (it would fail the same
/// way), and says why again. Before, every run requested a new certificate
/// and never showed the reason.
#[tokio::test]
async fn a_failed_certificate_is_shown_with_its_reason_and_never_requested_again() {
    let name = "t-caa";
    let proxy = Proxy::aws_like(Behaviours { acm_failure: Some("CAA_ERROR"), ..Behaviours::none(TIME_SCALE) }).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    for run in ["first", "second"] {
        let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
        let printed = format!("{}\n{}", apply.stdout, apply.stderr);
        assert_ne!(apply.code, 0, "{run} run: the domain cannot be made:\n{printed}");
        assert!(printed.contains("FAILED (CAA_ERROR: a CAA record"), "{run} run:\n{printed}");
        assert_eq!(requests_for_certificates(&proxy), 1, "{run} run: one request in all:\n{printed}");
    }
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("Blocked: certificate") && diff.stdout.contains("CAA_ERROR"), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// Right after CreateBucket, S3 may answer NoSuchBucket about the new
/// bucket; the deployer waits for it to show rather than failing the step.
#[tokio::test]
async fn a_bucket_s3_does_not_show_yet_is_waited_for() {
    let name = "t-s3-lag";
    let proxy = Proxy::aws_like(Behaviours { s3_create_lag: true, ..Behaviours::none(TIME_SCALE) }).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let lagged = proxy.behaviour_counts().get("s3_create_lag").copied().unwrap_or(0);
    assert!(lagged >= 1, "the truststore bucket was not shown at once: {:?}", proxy.behaviour_counts());
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// Bucket names are global: the truststore bucket's name may be another
/// account's. S3 then answers HeadBucket with a bare 403; the plan says
/// which bucket and what to do, and nothing is written.
#[tokio::test]
async fn a_truststore_bucket_name_another_account_holds_is_named_in_the_refusal() {
    let name = "t-taken";
    let taken: &'static [&'static str] = &["t-taken-truststore"];
    // (The slate is cleaned through a layer where the bucket is not taken.)
    let plain = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &plain).await;
    let proxy = Proxy::aws_like(Behaviours { foreign_buckets: taken, ..Behaviours::none(TIME_SCALE) }).await;
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_ne!(diff.code, 0);
    assert!(
        diff.stderr.contains("truststore bucket t-taken-truststore")
            && diff.stderr.contains("belongs to another account")
            && diff.stderr.contains("domain.truststore.bucket"),
        "{}",
        diff.stderr
    );
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing written");
}

/// The deployer's own lock bucket, `oauth-gateway-ACCOUNT-REGION`, held by
/// another account (bucket names are global; the deployer keeps its bucket
/// after the last teardown so the name stays the account's): the run is
/// refused naming the bucket, and nothing is written.
#[tokio::test]
async fn a_lock_bucket_another_account_holds_is_named_in_the_refusal() {
    let name = "t-lock-taken";
    let plain = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = fresh_stack(name, &stack_yaml(name, ""), &plain).await;
    let taken: &'static [&'static str] = &["oauth-gateway-123456789012-eu-west-1"];
    let proxy = Proxy::aws_like(Behaviours { foreign_buckets: taken, ..Behaviours::none(TIME_SCALE) }).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_ne!(apply.code, 0);
    assert!(
        apply.stderr.contains("lock bucket oauth-gateway-123456789012-eu-west-1: it belongs to another account"),
        "{}",
        apply.stderr
    );
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing written");
}
