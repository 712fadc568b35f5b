//! DNS validation the way pipelines need it, against the AWS-like layer's
//! `acm_dns_validation` (moto issues a requested certificate at once; ACM
//! keeps it PENDING_VALIDATION until its CNAME resolves):
//!
//! - without a hosted zone, `apply` does everything that does not depend on
//!   the certificate and exits 3; `diff` and `output` show the record (text
//!   and JSON); once the record exists, the next `apply` finishes;
//! - with `domain.hosted_zone_id`, the deployer writes the validation CNAME
//!   and the domain's alias records itself, and teardown removes those and
//!   nothing else of the zone;
//! - a name someone else serves is never moved: the plan is refused.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use e2e::aws_like::Behaviours;
use e2e::deploy::{
    Clients, StackDir, TIME_SCALE, clients, clients_at, clients_in, deployer, edge_yaml, env, fresh_stack, must,
    snapshot, stack_yaml,
};
use e2e::moto::Proxy;

/// A layer where ACM validates only what it can resolve: the record written
/// through Route 53, or one someone made by hand (when the test says so).
/// ACM issues 3 AWS-minutes after the record is written (1.8 s here), the
/// layer's default.
async fn validating_proxy() -> Proxy {
    Proxy::aws_like(Behaviours { acm_dns_validation: true, ..Behaviours::none(TIME_SCALE) }).await
}

/// The ARN of the stack's certificate for `domain`, read straight from moto.
async fn acm_arn(aws: &Clients, domain: &str) -> String {
    let listed = aws.acm.list_certificates().send().await.expect("certificates");
    listed
        .certificate_summary_list()
        .iter()
        .find(|c| c.domain_name() == Some(domain))
        .and_then(|c| c.certificate_arn())
        .expect("the stack's certificate")
        .to_owned()
}

/// The validation record ACM names for the stack's certificate, read
/// straight from moto: (name, value).
async fn acm_record(aws: &Clients, domain: &str) -> (String, String) {
    let arn = acm_arn(aws, domain).await;
    let described = aws.acm.describe_certificate().certificate_arn(arn).send().await.expect("certificate");
    let certificate = described.certificate().expect("certificate");
    let record = certificate.domain_validation_options()[0].resource_record().expect("a validation record");
    (record.name().to_owned(), record.value().to_owned())
}

/// A public hosted zone for `name`, made for the test; its id without `/hostedzone/`.
async fn hosted_zone(aws: &Clients, name: &str) -> String {
    let created = aws
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("{name}-{}", std::process::id()))
        .send()
        .await
        .expect("hosted zone");
    let id = created.hosted_zone().expect("zone").id();
    id.trim_start_matches("/hostedzone/").to_owned()
}

/// Writes `name A address` in `zone`, as someone other than the deployer.
async fn a_record(aws: &Clients, zone: &str, name: &str, address: &str) {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(address).build().unwrap())
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Create).resource_record_set(set).build().unwrap();
    aws.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("someone else's record");
}

/// Every record set of `zone`: `name type value-or-alias-target`, sorted.
async fn records(aws: &Clients, zone: &str) -> Vec<String> {
    let listed = aws.route53.list_resource_record_sets().hosted_zone_id(zone).send().await.expect("records");
    let mut lines: Vec<String> = listed
        .resource_record_sets()
        .iter()
        .map(|set| {
            let value = match set.alias_target() {
                Some(alias) => format!("alias {} {}", alias.dns_name(), alias.hosted_zone_id()),
                None => set.resource_records().iter().map(|r| r.value()).collect::<Vec<_>>().join(","),
            };
            format!("{} {} {value}", set.name(), set.r#type().as_str())
        })
        .collect();
    lines.sort();
    lines
}

fn with_zone(name: &str, zone: &str) -> String {
    stack_yaml(
        name,
        &edge_yaml(name).replace("  base_path: v1\n", &format!("  base_path: v1\n  hosted_zone_id: {zone}\n")),
    )
}

#[tokio::test]
async fn a_certificate_waiting_for_its_record_leaves_the_rest_done_and_apply_exits_3() {
    let name = "t-dns-wait";
    let domain = format!("api.{name}.example.com");
    let proxy = validating_proxy().await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;

    let first = deployer(&stack, &proxy.url(), &["apply", "--wait-for-certificate", "60"], &env()).await;
    assert_eq!(first.code, 3, "waiting for DNS validation is exit code 3:\n{}\n{}", first.stdout, first.stderr);
    let aws = clients().await;
    let (record, value) = acm_record(&aws, &domain).await;
    assert!(first.stderr.contains("Apply is waiting for DNS validation"), "{}", first.stderr);
    assert!(first.stderr.contains(&format!("{record} CNAME {value}")), "the record to create:\n{}", first.stderr);
    assert!(first.stderr.contains(&format!("not done (depends on a step that failed or waits): domain_name {domain}")));
    // Everything that does not depend on the certificate is done.
    let made = snapshot(&aws, name).await;
    for part in [
        format!("lambda_function {name}-authorizer tagged"),
        format!("rest_api {name}-api tagged"),
        "  stage prod".to_owned(),
        format!("  web_acl_association prod {name}-allowlist"),
        format!("truststore {name}-truststore tagged objects=1"),
        format!("certificate {domain} tagged"),
    ] {
        assert!(made.contains(&part), "{part} is missing: {made:#?}");
    }
    assert!(!made.iter().any(|l| l.starts_with("domain_name")), "the domain waits for its certificate: {made:#?}");

    // The record is in diff and output, as text and as JSON.
    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 2, "{}", diff.stderr);
    assert!(
        diff.stdout.contains(&format!("DNS validation: ACM issues the certificate for {domain}")),
        "{}",
        diff.stdout
    );
    assert!(diff.stdout.contains(&format!("{record} CNAME {value}")), "{}", diff.stdout);
    let plan: serde_json::Value =
        serde_json::from_str(&must(&stack, &proxy, &["diff", "--json"]).await.stdout).expect("plan JSON");
    assert_eq!(plan["dns_validation"]["records"][0]["name"], record.as_str(), "{plan}");
    assert_eq!(plan["dns_validation"]["records"][0]["type"], "CNAME");
    assert_eq!(plan["dns_validation"]["status"], "PENDING_VALIDATION");
    let outputs: serde_json::Value =
        serde_json::from_str(&must(&stack, &proxy, &["output", "--json"]).await.stdout).expect("outputs JSON");
    assert_eq!(outputs["dns_validation"]["records"][0]["value"], value.as_str(), "{outputs}");
    let text = must(&stack, &proxy, &["output"]).await;
    assert!(text.stdout.contains(&format!("{record} CNAME {value}")), "{}", text.stdout);

    // Once someone has made the record by hand, the next apply finishes.
    proxy.validation_records_made_elsewhere();
    let second = must(&stack, &proxy, &["apply", "--wait-for-certificate", "1800"]).await;
    assert!(second.stderr.contains("Apply complete."), "{}", second.stderr);
    let made = snapshot(&aws, name).await;
    assert!(made.contains(&format!("domain_name {domain} tagged")), "{made:#?}");
    assert!(made.contains(&"  base_path_mapping v1".to_owned()), "{made:#?}");
    let settled = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
    assert!(!settled.stdout.contains("DNS validation"), "an issued certificate waits for nothing: {}", settled.stdout);
    assert!(proxy.behaviour_counts().get("acm_dns_validation").is_some_and(|n| *n > 0));
    must(&stack, &proxy, &["teardown"]).await;
}

#[tokio::test]
async fn with_a_hosted_zone_the_deployer_writes_the_records_and_teardown_removes_only_those() {
    let name = "t-dns-zone";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    a_record(&aws, &zone, &format!("www.{name}.example.com"), "192.0.2.1").await;
    let before = records(&aws, &zone).await;
    // Only a record written through Route 53 gets the certificate issued.
    let proxy = validating_proxy().await;
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;
    proxy.reset();

    let apply = must(&stack, &proxy, &["apply"]).await;
    assert!(apply.stderr.contains("ACM validates"), "the certificate waited for its record: {}", apply.stderr);
    let (record, value) = acm_record(&aws, &domain).await;
    let read = aws.apigateway.get_domain_name().domain_name(&domain).send().await.expect("the domain");
    let target = format!("{}.", read.regional_domain_name().expect("regional name"));
    let target_zone = read.regional_hosted_zone_id().expect("regional zone");
    let after = records(&aws, &zone).await;
    for wanted in [
        format!("{record} CNAME {value}"),
        format!("{domain}. A alias {target} {target_zone}"),
        format!("{domain}. AAAA alias {target} {target_zone}"),
    ] {
        assert!(after.contains(&wanted), "{wanted} is missing: {after:#?}");
    }
    assert_eq!(after.len(), before.len() + 3, "{after:#?}");
    // The CNAME before the domain (which waits for the certificate), the
    // aliases once the domain exists.
    let changes = proxy.changes();
    let position = |what: &dyn Fn(&String) -> bool| changes.iter().position(what).expect("a change");
    let rrset = format!("POST /2013-04-01/hostedzone/{zone}/rrset");
    let first_record = position(&|c| c.starts_with(&rrset));
    let last_record = changes.iter().rposition(|c| c.starts_with(&rrset)).expect("records");
    let domain_created = position(&|c| c == "POST /domainnames");
    assert!(first_record < domain_created && domain_created < last_record, "{changes:#?}");
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);

    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(records(&aws, &zone).await, before, "teardown removes the records it wrote, and only those");
}

/// ACM's validation record is the account's for a name, in every region,
/// and renews every certificate of that name (moto, like ACM, names the
/// same record for every certificate of a domain): one a CloudFront
/// certificate in us-east-1 renews by stays when the stack goes.
#[tokio::test]
async fn a_validation_record_another_certificate_renews_by_is_left_in_place() {
    let name = "t-dns-shared";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let proxy = validating_proxy().await;
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let (record, value) = acm_record(&aws, &domain).await;

    // Someone else's certificate for the same name, for CloudFront.
    let us_east_1 = clients_in("us-east-1").await;
    let cloudfront = us_east_1
        .acm
        .request_certificate()
        .domain_name(&domain)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .expect("a CloudFront certificate");
    let cloudfront = cloudfront.certificate_arn().expect("its ARN").to_owned();

    let teardown = must(&stack, &proxy, &["teardown", "--json"]).await;
    let plan: serde_json::Value = serde_json::from_str(&teardown.stdout).expect("the teardown plan as JSON");
    let left = plan["left_in_place"].to_string();
    assert!(left.contains(&format!("validation_record {domain}")) && left.contains(&cloudfront), "{plan:#}");
    assert!(teardown.stderr.contains("Teardown complete."), "{}", teardown.stderr);
    let after = records(&aws, &zone).await;
    assert!(after.contains(&format!("{record} CNAME {value}")), "the shared record stays: {after:#?}");
    assert!(!after.iter().any(|r| r.starts_with(&format!("{domain}. A"))), "the stack's aliases go: {after:#?}");
}

/// IPv6 clients are served only by a dualstack domain (an AAAA alias to an
/// IPv4-only one answers nobody: the layer counts any such record), and a
/// stack that says `execute_api: keep` keeps the default endpoint on, with
/// a warning on every plan, until it says `off`.
#[tokio::test]
async fn aaaa_only_for_a_dualstack_domain_and_execute_api_kept_until_the_stack_says_off() {
    let name = "t-dns-v6";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let proxy = validating_proxy().await;
    let saying = |yaml: String, execute_api: &str| {
        yaml.replace("  base_path: v1\n", &format!("  base_path: v1\n  execute_api: {execute_api}\n"))
    };
    // IPv4 only (API Gateway's default) and an IPv4 allowlist.
    let ipv4 = with_zone(name, &zone).replace("  ip_address_type: dualstack\n", "").replace(", \"2001:db8::/32\"", "");
    let stack = fresh_stack(name, &saying(ipv4, "keep"), &proxy).await;
    let apply = must(&stack, &proxy, &["apply"]).await;
    let said = format!("{}{}", apply.stdout, apply.stderr);
    assert!(said.contains("Warning: domain.execute_api: keep: the API's default endpoint (execute-api) stays on"));
    assert!(said.contains(&format!("Warning: api.ip_address_type: ipv4: {domain} answers IPv4 clients only")));
    let served = records(&aws, &zone).await;
    assert!(served.iter().any(|r| r.starts_with(&format!("{domain}. A alias"))), "{served:#?}");
    assert!(!served.iter().any(|r| r.starts_with(&format!("{domain}. AAAA"))), "IPv4 only: {served:#?}");
    assert_eq!(proxy.behaviour_counts().get("aaaa_to_ipv4_only"), None, "no AAAA alias to an IPv4-only domain");
    let apis = aws.apigateway.get_rest_apis().send().await.expect("APIs");
    let api_id = apis.items().iter().find(|a| a.name() == Some(&format!("{name}-api"))).and_then(|a| a.id());
    let api_id = api_id.expect("the stack's API").to_owned();
    let api = aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.expect("the API");
    assert!(!api.disable_execute_api_endpoint(), "kept on, as the stack says");

    // Dualstack (the IPv6 network is taken now) and execute-api off.
    stack.write("stack.yaml", saying(with_zone(name, &zone), "off"));
    let diff = must(&stack, &proxy, &["diff"]).await;
    for change in [
        format!("~ rest_api {name}-api"),
        format!("~ domain_name {domain}"),
        "ip_address_type: ipv4 → dualstack".to_owned(),
        format!("+ alias_record {domain} AAAA"),
        format!("~ ip_set {name}-allow-ipv6"),
        "execute_api: on → off".to_owned(),
    ] {
        assert!(diff.stdout.contains(&change), "{change}: {}", diff.stdout);
    }
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    let sent = proxy.calls();
    let patched = |path: &str| {
        sent.iter().any(|c| {
            c.request.method == "PATCH"
                && c.request.path == path
                && c.request.body.contains("/endpointConfiguration/ipAddressType")
                && c.request.body.contains("dualstack")
        })
    };
    // (moto drops the address type of an update; the layer keeps it, and
    // these are the requests the deployer sent.)
    assert!(patched(&format!("/restapis/{api_id}")) && patched(&format!("/domainnames/{domain}")), "{sent:#?}");
    let dualstack = Some(&aws_sdk_apigateway::types::IpAddressType::Dualstack);
    let read = clients_at(&proxy.url())
        .await
        .apigateway
        .get_domain_name()
        .domain_name(&domain)
        .send()
        .await
        .expect("the domain");
    assert_eq!(read.endpoint_configuration().and_then(|c| c.ip_address_type()), dualstack);
    let served = records(&aws, &zone).await;
    assert!(served.iter().any(|r| r.starts_with(&format!("{domain}. AAAA alias"))), "{served:#?}");
    assert_eq!(proxy.behaviour_counts().get("aaaa_to_ipv4_only"), None, "the AAAA alias is to a dualstack domain");
    let api = aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.expect("the API");
    assert!(api.disable_execute_api_endpoint(), "off, as the stack says now");
    let settled = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(settled.code, 0, "{}", settled.stdout);
    assert!(!settled.stdout.contains("Warning:"), "{}", settled.stdout);
    must(&stack, &proxy, &["teardown"]).await;
}

/// Route 53's answer to the CREATE of the validation record is lost after
/// the record was made: the SDK sends the CREATE again, Route 53 says the
/// record exists, and the deployer finds it is exactly the one it wrote.
#[tokio::test]
async fn a_record_create_whose_answer_was_lost_is_not_taken_for_someone_elses() {
    let name = "t-dns-lost";
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let rrset: &'static str = Box::leak(format!("POST /2013-04-01/hostedzone/{zone}/rrset").into_boxed_str());
    let proxy = Proxy::aws_like(Behaviours {
        acm_dns_validation: true,
        lost_answers: Some(e2e::aws_like::LostAnswers { rate: 1.0, seed: 0, only: Some(rrset), at_most: 1 }),
        ..Behaviours::none(TIME_SCALE)
    })
    .await;
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(proxy.behaviour_counts().get("lost_answer"), Some(&1), "the CREATE's answer was lost");
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let (record, value) = acm_record(&aws, &format!("api.{name}.example.com")).await;
    assert!(records(&aws, &zone).await.contains(&format!("{record} CNAME {value}")));
    must(&stack, &proxy, &["teardown"]).await;
}

#[tokio::test]
async fn a_name_someone_else_serves_is_never_taken_over() {
    let name = "t-dns-taken";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    a_record(&aws, &zone, &domain, "192.0.2.7").await;
    let before = records(&aws, &zone).await;
    let proxy = validating_proxy().await;
    let stack = StackDir::new(name, &with_zone(name, &zone));

    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(apply.stderr.contains(&format!("refusing to take over:\n  alias_record {domain} A")), "{}", apply.stderr);
    // Refused at planning: nothing but the lock was written.
    assert_eq!(proxy.changes(), Vec::<String>::new());
    assert_eq!(records(&aws, &zone).await, before);
}

/// ACM takes minutes to over an hour after the record is served. With a
/// hosted zone the deployer writes the record, waits until Route 53 says
/// the change is INSYNC, then waits for ACM long enough (45 minutes by
/// default) that one run serves the domain; without one, the first run
/// exits 3 and a second finishes once the record exists. Before, the
/// default wait was 5 minutes either way: two runs even with a zone.
#[tokio::test]
async fn with_a_hosted_zone_one_run_outlasts_a_slow_acm() {
    let slow = || Behaviours {
        acm_dns_validation: true,
        acm_issue_after: Some(std::time::Duration::from_secs(20 * 60)),
        route53_propagation: true,
        ..Behaviours::none(TIME_SCALE)
    };
    let aws = clients().await;

    let name = "t-dns-slow-zone";
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let proxy = Proxy::aws_like(slow()).await;
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;
    let started = std::time::Instant::now();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    let with_zone_took = started.elapsed();
    assert_eq!(apply.code, 0, "one run:\n{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stderr.contains("waiting for ACM to issue certificate"), "progress shown: {}", apply.stderr);
    let pending = proxy.behaviour_counts().get("route53_pending").copied().unwrap_or(0);
    assert!(pending >= 1, "the deployer read the change until INSYNC: {:?}", proxy.behaviour_counts());
    let domain = format!("api.{name}.example.com");
    assert!(aws.apigateway.get_domain_name().domain_name(&domain).send().await.is_ok(), "the domain is served");
    must(&stack, &proxy, &["teardown"]).await;

    let name = "t-dns-slow-none";
    let proxy = Proxy::aws_like(slow()).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    let started = std::time::Instant::now();
    let first = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(first.code, 3, "without a zone, the record is someone else's:\n{}", first.stderr);
    proxy.validation_records_made_elsewhere();
    let second = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    eprintln!(
        "time to a served domain, ACM taking 20 AWS minutes (x{TIME_SCALE}): with a hosted zone {:.1} s in 1 run, \
         without {:.1} s in 2 runs",
        with_zone_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    must(&stack, &proxy, &["teardown"]).await;
}

/// What Route 53 would refuse half-way, or serve to no one, is refused by
/// the plan, naming the zone and what to do: a CNAME at the domain's name
/// (no other record may sit beside it, so the alias records would fail
/// after the domain exists), a private zone, a zone that does not hold the
/// domain. Nothing is written. Before, each failed late or went unnoticed.
#[tokio::test]
async fn a_zone_that_cannot_take_the_domains_records_is_refused_by_the_plan() {
    let aws = clients().await;
    let proxy = validating_proxy().await;

    let name = "t-dns-cname";
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let domain = format!("api.{name}.example.com");
    let set = ResourceRecordSet::builder()
        .name(&domain)
        .r#type(RrType::Cname)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value("old-gateway.example.net").build().expect("record"))
        .build()
        .expect("record set");
    let change = Change::builder().action(ChangeAction::Create).resource_record_set(set).build().expect("change");
    let batch = ChangeBatch::builder().changes(change).build().expect("batch");
    aws.route53.change_resource_record_sets().hosted_zone_id(&zone).change_batch(batch).send().await.expect("CNAME");
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stderr.contains(&format!("zone {zone} holds a CNAME record {domain}.")), "{}", diff.stderr);

    let name = "t-dns-private";
    let private = aws
        .route53
        .create_hosted_zone()
        .name(format!("{name}.example.com"))
        .caller_reference(format!("{name}-{}", std::process::id()))
        .hosted_zone_config(aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build())
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id("vpc-12345678")
                .vpc_region(aws_sdk_route53::types::VpcRegion::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("private zone");
    let private = private.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned();
    let stack = fresh_stack(name, &with_zone(name, &private), &proxy).await;
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stderr.contains("is a private hosted zone"), "{}", diff.stderr);

    let name = "t-dns-elsewhere";
    let other = hosted_zone(&aws, "t-dns-other.example.org").await;
    let stack = fresh_stack(name, &with_zone(name, &other), &proxy).await;
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stderr.contains("which does not hold api.t-dns-elsewhere.example.com."), "{}", diff.stderr);
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing written");
}

/// ACM issues when it issues: between the plan someone reviewed (the
/// certificate pending, its validation a step to wait out) and `apply
/// PLAN`, it may have. Waiting for what is already there writes nothing and
/// is no change to the plan: the apply goes on and finishes.
#[tokio::test]
async fn a_certificate_acm_issues_between_the_reviewed_plan_and_its_apply_is_waited_for_no_more() {
    let name = "t-dns-issued";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    // ACM issues 15 AWS-minutes (9 s) after the record is written: the plan
    // below is made well before, however loaded the machine.
    let proxy = Proxy::aws_like(Behaviours {
        acm_dns_validation: true,
        acm_issue_after: Some(std::time::Duration::from_secs(15 * 60)),
        ..Behaviours::none(TIME_SCALE)
    })
    .await;
    let stack = fresh_stack(name, &with_zone(name, &zone), &proxy).await;

    let first = deployer(&stack, &proxy.url(), &["apply", "--wait-for-certificate", "0"], &env()).await;
    assert_eq!(first.code, 3, "the record is written, the certificate pending:\n{}\n{}", first.stdout, first.stderr);
    let plan = stack.path("plan.json");
    let reviewed = must(&stack, &proxy, &["plan", "--json", "--out", plan.to_str().unwrap()]).await;
    let steps = e2e::deploy::planned(&reviewed.stdout);
    let wait = e2e::deploy::step(&steps, &format!("certificate_validation {domain}"));
    assert_eq!(wait.map(|w| w.action.as_str()), Some("update"), "the plan waits for ACM: {steps:?}");
    // Until ACM, as the deployer sees it (through the layer), says ISSUED.
    let through_layer = clients_at(&proxy.url()).await;
    let arn = acm_arn(&aws, &domain).await;
    let mut issued = false;
    for _ in 0..120 {
        let described =
            through_layer.acm.describe_certificate().certificate_arn(&arn).send().await.expect("certificate");
        if described.certificate().and_then(|c| c.status()).is_some_and(|s| s.as_str() == "ISSUED") {
            issued = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(issued, "ACM issued the certificate within 30 s");
    let apply = deployer(&stack, &proxy.url(), &["apply", plan.to_str().unwrap()], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);
    must(&stack, &proxy, &["teardown"]).await;
}
