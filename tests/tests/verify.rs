//! `deployer verify` against `deployer local`: the real deployer binary
//! sending real requests with real certificates and signed tokens (from a
//! token command, as a pipeline gives it), and reporting each promise. One
//! edge where every promise holds, and edges where each is broken: an
//! authorizer that allows everything, a default endpoint that answers, an
//! edge without mutual TLS, a route whose mapped header the edge does not
//! set, and a runner outside the allowlist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use e2e::local::{Launch, LocalEdge, LocalPki, StackOptions, python_function, scratch_directory, write_stack};
use e2e::server::{Reply, TestServer};
use serde_json::{Value, json};

/// The files a pipeline would hold: the client certificates and keys, the
/// server's CA, and a token command that asks this test's mint (which signs
/// with the keys the edge's JWKS publishes) for a token bound to
/// `$VERIFY_CERT` with `$VERIFY_SCOPE`.
struct Pipeline {
    directory: PathBuf,
    _mint: TestServer,
    token_command: String,
}

impl Pipeline {
    async fn new(pki: &LocalPki) -> Pipeline {
        let directory = scratch_directory("verify-pipeline");
        std::fs::create_dir_all(&directory).expect("directory");
        let mut thumbprints = HashMap::new();
        for (name, certificate) in [("client", &pki.client), ("second", &pki.other_client)] {
            let cert = directory.join(format!("{name}.pem"));
            std::fs::write(&cert, &certificate.pem).expect("certificate");
            std::fs::write(directory.join(format!("{name}.key")), &certificate.key_pem).expect("key");
            thumbprints.insert(cert.display().to_string(), certificate.thumbprint.clone());
        }
        std::fs::write(directory.join("server-ca.pem"), &pki.server_ca.pem).expect("server CA");
        let mint = TestServer::start(move |request| {
            let asked: Value = serde_json::from_str(&request.body).unwrap_or_default();
            let Some(thumbprint) = asked["cert"].as_str().and_then(|c| thumbprints.get(c)) else {
                return Reply::status(400, "unknown certificate");
            };
            let mut claims = e2e::fixture::claims();
            claims["scope"] = asked["scope"].clone();
            claims["cnf"] = json!({"x5t#S256": thumbprint});
            Reply::status(200, &e2e::fixture::keys().rsa.sign(&claims))
        })
        .await;
        let token_command = format!(
            "python3 -c 'import json, os, urllib.request; asked = json.dumps({{\"scope\": os.environ[\"VERIFY_SCOPE\"], \
             \"cert\": os.environ[\"VERIFY_CERT\"]}}).encode(); print(urllib.request.urlopen(\"{}\", asked).read().decode())'",
            mint.url("/token")
        );
        Pipeline { directory, _mint: mint, token_command }
    }

    fn file(&self, name: &str) -> String {
        self.directory.join(name).display().to_string()
    }
}

/// `deployer --stack STACK verify` against `edge`, with the pipeline's files.
async fn verify(stack: &Path, edge: &LocalEdge, pipeline: &Pipeline, extra: &[&str]) -> (i32, Value, String) {
    verify_with(stack, edge, pipeline, true, extra).await
}

/// [`verify`], with or without the token command.
async fn verify_with(
    stack: &Path,
    edge: &LocalEdge,
    pipeline: &Pipeline,
    token_command: bool,
    extra: &[&str],
) -> (i32, Value, String) {
    let address = edge.address.to_string();
    let mut arguments = vec![
        "--stack".to_owned(),
        stack.display().to_string(),
        "--json".to_owned(),
        "verify".to_owned(),
        "--url".to_owned(),
        edge.base.clone(),
        "--connect-to".to_owned(),
        address,
        "--server-ca".to_owned(),
        pipeline.file("server-ca.pem"),
        "--cert".to_owned(),
        pipeline.file("client.pem"),
        "--key".to_owned(),
        pipeline.file("client.key"),
        "--access-log".to_owned(),
        edge.directory.join("access.log").display().to_string(),
        "--function-log".to_owned(),
        edge.directory.join("function.log").display().to_string(),
    ];
    if token_command {
        arguments.extend(["--token-command".to_owned(), pipeline.token_command.clone()]);
    }
    arguments.extend(extra.iter().map(|a| (*a).to_owned()));
    let output = tokio::process::Command::new(e2e::workspace_binary("debug", "deployer"))
        .args(&arguments)
        // The local edge writes its lines before it answers: no log delivery to wait for.
        .env("DEPLOYER_TIME_SCALE", "0.1")
        .output()
        .await
        .expect("deployer verify runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for secret in ["eyJ", "PRIVATE KEY"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} printed:\n{stdout}\n{stderr}");
    }
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.code().unwrap_or(-1), report, stderr)
}

/// Each check's outcome, by id.
fn outcomes(report: &Value) -> HashMap<String, String> {
    let checks = report["checks"].as_array().expect("checks");
    checks
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or("").to_owned(), c["outcome"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn second_certificate(pipeline: &Pipeline) -> [String; 4] {
    ["--second-cert".into(), pipeline.file("second.pem"), "--second-key".into(), pipeline.file("second.key")]
}

/// Starts `deployer local` on a stack file edited by `edit` (the file
/// `verify` is given stays as written: what the team deployed and what
/// serves may differ, which is what verify finds).
async fn edge_serving(options: StackOptions, edit: impl Fn(String) -> String) -> (LocalEdge, PathBuf) {
    let pki = std::sync::Arc::new(LocalPki::new());
    let jwks = e2e::fixture::jwks_server().await;
    let backend = e2e::local::echo_backend().await;
    let directory = scratch_directory("verify-edge");
    let declared = write_stack(&directory, &options, &jwks.url("/jwks"), &pki);
    let text = std::fs::read_to_string(&declared).expect("stack");
    let served = directory.join("served.yaml");
    std::fs::write(&served, edit(text)).expect("served stack");
    let bootstrap = options.bootstrap.clone().unwrap_or_else(|| e2e::workspace_binary("debug", "bootstrap"));
    let launch = Launch {
        deployer: e2e::workspace_binary("debug", "deployer"),
        stack: served,
        arguments: vec![
            "--bootstrap".to_owned(),
            bootstrap.display().to_string(),
            "--access-log".to_owned(),
            directory.join("access.log").display().to_string(),
            "--function-log".to_owned(),
            directory.join("function.log").display().to_string(),
        ],
        environment: Vec::new(),
        keep_access_log: true,
    };
    let edge = LocalEdge::launch(launch, pki, jwks, backend, directory).await;
    (edge.unwrap_or_else(|stderr| panic!("deployer local did not start:\n{stderr}")), declared)
}

#[tokio::test]
async fn every_promise_of_the_stack_holds_on_the_local_edge() {
    let (edge, stack) = edge_serving(StackOptions::default(), |text| text).await;
    let pipeline = Pipeline::new(&edge.pki).await;
    let junit = pipeline.file("verify.xml");
    let mut extra: Vec<String> = second_certificate(&pipeline).into();
    // The default endpoint of a stack with a domain: here, a port nobody listens on.
    extra.extend(
        ["--execute-api-url", "https://127.0.0.1:9/prod", "--echo-path", "/pets/7", "--junit", &junit]
            .map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (code, report, stderr) = verify(&stack, &edge, &pipeline, &extra).await;
    assert_eq!(code, 0, "{stderr}");
    let outcomes = outcomes(&report);
    for held in [
        "tls.certificate_accepted",
        "tls.certificate_required",
        "tls.other_ca_refused",
        "tls.legacy_version_refused",
        "waf.allowlist",
        "execute_api.off",
        "authorizer.no_token",
        "authorizer.scopes GET /pets/{id}",
        "authorizer.scopes POST /pets",
        "authorizer.allows GET /pets/{id}",
        "authorizer.binding",
        "headers.forged",
        "authorizer.path_spellings",
    ] {
        assert_eq!(outcomes.get(held).map(String::as_str), Some("pass"), "{held}: {report:#}");
    }
    // A POST with a valid token would reach the backend: not sent.
    assert_eq!(outcomes["authorizer.allows POST /pets"], "not_checked");
    assert_eq!(report["failed"], 0);
    let writes = edge.backend.requests().iter().filter(|r| r.method != "GET").count();
    assert_eq!(writes, 0, "no request verify sent reached the backend as a write");
    let xml = std::fs::read_to_string(&junit).expect("JUnit XML");
    assert_eq!(xml.matches("<testcase").count(), outcomes.len(), "{xml}");
    assert!(xml.contains("<skipped") && !xml.contains("<failure"), "{xml}");
    assert!(stderr.contains("held, 0 broken"), "{stderr}");
    // What the edge's access log says it did with verify's requests: the
    // subject DN it passes, and the route each spelling matched.
    let facts = report["checks"].as_array().and_then(|c| c.iter().find(|c| c["id"] == "edge.facts")).expect("facts");
    assert_eq!(facts["outcome"], "recorded", "{facts}");
    let facts = facts["detail"].as_str().unwrap_or_default();
    assert!(facts.contains(&format!("subjectDN {}", edge.pki.client.subject_dn)), "{facts}");
    assert!(facts.contains("GET /pets/verify without a token → resourcePath /pets/{id}, status 401"), "{facts}");
    assert!(
        facts.contains(
            "GET /pets/a%2Eb → resourcePath /pets/{id}, status 200, method ARN \
             arn:aws:execute-api:eu-west-1:123456789012:local/prod/GET/pets/a.b (allow)"
        ),
        "{facts}"
    );
    eprintln!("verify: {} requests in {:.2} s", report["requests"], report["seconds"].as_f64().unwrap_or_default());
    edge.stop().await;
}

#[tokio::test]
async fn an_authorizer_that_allows_everything_a_live_default_endpoint_and_an_unset_header_are_found() {
    // Allows whatever it is asked, with a context of `sub` only; and the
    // served stack no longer maps X-Client-Id, so a client's copy goes through.
    let options = StackOptions { bootstrap: Some(python_function("verify-allow-all", "")), ..StackOptions::default() };
    let (edge, stack) = edge_serving(options, |text| text.replacen(", X-Client-Id: client_id", "", 1)).await;
    let pipeline = Pipeline::new(&edge.pki).await;
    let execute_api = TestServer::start(|_| Reply::json(json!({"message": "hello"}))).await;
    let mut extra: Vec<String> = second_certificate(&pipeline).into();
    extra.extend(["--execute-api-url".to_owned(), execute_api.url("/prod"), "--echo-path".into(), "/pets/7".into()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (code, report, stderr) = verify(&stack, &edge, &pipeline, &extra).await;
    assert_eq!(code, 4, "a broken promise is exit code 4: {stderr}");
    let outcomes = outcomes(&report);
    for broken in [
        "execute_api.off",
        "authorizer.scopes GET /pets/{id}",
        "authorizer.scopes POST /pets",
        "authorizer.binding",
        "headers.forged",
        "authorizer.path_spellings",
    ] {
        assert_eq!(outcomes.get(broken).map(String::as_str), Some("fail"), "{broken}: {report:#}");
    }
    // What still holds is still said to.
    assert_eq!(outcomes["tls.certificate_required"], "pass");
    assert!(stderr.contains("FAIL authorizer.binding"), "{stderr}");
    edge.stop().await;
}

#[tokio::test]
async fn an_edge_without_mutual_tls_and_a_runner_outside_the_allowlist_are_told_apart() {
    // Served without `domain:` (no client certificate asked), with an
    // allowlist that leaves this runner (127.0.0.1) out.
    let options = StackOptions { allow: vec!["127.0.0.2/32"], ..StackOptions::default() };
    let without_mtls = |text: String| {
        let start = text.find("domain:\n").expect("a domain section");
        let end = text[start..].find("waf:").expect("a waf section") + start;
        format!("{}{}", &text[..start], &text[end..])
    };
    let (edge, stack) = edge_serving(options, without_mtls).await;
    let pipeline = Pipeline::new(&edge.pki).await;
    let extra = ["--execute-api-url", "https://127.0.0.1:9/prod", "--outside-allowlist"];
    let (code, report, stderr) = verify(&stack, &edge, &pipeline, &extra).await;
    assert_eq!(code, 4, "{stderr}");
    let outcomes = outcomes(&report);
    assert_eq!(outcomes["tls.certificate_required"], "fail", "{report:#}");
    assert_eq!(outcomes["tls.other_ca_refused"], "fail", "{report:#}");
    assert_eq!(outcomes["waf.allowlist"], "pass", "outside the allowlist, the WAF's 403: {report:#}");
    assert_eq!(outcomes["authorizer.*"], "not_checked", "{report:#}");
    // The same runner, not said to be outside: the WAF's 403 is reported, not taken for the authorizer's.
    let (_, report, _) = verify(&stack, &edge, &pipeline, &["--execute-api-url", "https://127.0.0.1:9/prod"]).await;
    assert_eq!(outcomes_of(&report, "waf.allowlist"), "fail", "{report:#}");
    edge.stop().await;
}

#[tokio::test]
async fn a_route_served_with_other_scopes_another_realm_and_a_certificate_the_edge_refuses_are_found() {
    // The edge serves GET /pets/{id} for pets:admin, not pets:read, and
    // answers 401 with another realm than the stack's.
    let served = |text: String| {
        text.replacen("scopes: [pets:read]", "scopes: [pets:admin]", 1).replacen("realm: pets", "realm: other", 1)
    };
    let (edge, stack) = edge_serving(StackOptions::default(), served).await;
    let pipeline = Pipeline::new(&edge.pki).await;
    let extra = ["--execute-api-url", "https://127.0.0.1:9/prod"];
    let (code, report, stderr) = verify(&stack, &edge, &pipeline, &extra).await;
    assert_eq!(code, 4, "{stderr}");
    let outcomes = outcomes(&report);
    assert_eq!(outcomes["authorizer.allows GET /pets/{id}"], "fail", "{report:#}");
    assert_eq!(outcomes["authorizer.no_token"], "fail", "{report:#}");
    assert_eq!(outcomes["authorizer.scopes GET /pets/{id}"], "pass", "a token without any scope is still refused");

    // Without a token command, what needs a token is said not to be checked.
    let (_, report, _) = verify_with(&stack, &edge, &pipeline, false, &extra).await;
    assert_eq!(outcomes_of(&report, "authorizer.tokens"), "not_checked", "{report:#}");
    assert_eq!(outcomes_of(&report, "authorizer.no_token"), "fail", "the checks without a token still run");

    // A client certificate the truststore does not hold: nothing else can be checked.
    std::fs::write(pipeline.directory.join("client.pem"), &edge.pki.foreign_client.pem).expect("certificate");
    std::fs::write(pipeline.directory.join("client.key"), &edge.pki.foreign_client.key_pem).expect("key");
    let (code, report, _) = verify(&stack, &edge, &pipeline, &extra).await;
    assert_eq!(code, 4);
    assert_eq!(outcomes_of(&report, "tls.certificate_accepted"), "fail", "{report:#}");
    assert_eq!(outcomes_of(&report, "*"), "not_checked", "{report:#}");
    edge.stop().await;
}

fn outcomes_of(report: &Value, id: &str) -> String {
    outcomes(report).get(id).cloned().unwrap_or_default()
}
