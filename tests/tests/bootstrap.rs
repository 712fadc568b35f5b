//! The built `bootstrap` binary, run as Lambda runs it: a separate process
//! that talks to a Lambda Runtime API (served here on 127.0.0.1), with its
//! configuration in environment variables.

use std::time::Duration;

use e2e::events;
use e2e::fixture::{self, claims, keys, pki};
use e2e::runtime_api::{Outcome, RuntimeApi, spawn_function};
use e2e::server::{Reply, TestServer};
use serde_json::json;
use tokio::io::AsyncReadExt as _;

const WAIT: Duration = Duration::from_secs(10);

fn jwt_env(jwks_uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TOKEN_VALIDATION", "jwt".into()),
        ("JWKS_URI", jwks_uri.into()),
        ("TOKEN_ISSUER", fixture::ISSUER.into()),
        ("AUDIENCE", fixture::AUDIENCE.into()),
        ("ROUTES", fixture::ROUTES.into()),
    ]
}

async fn output_of(mut child: tokio::process::Child) -> (Option<i32>, String) {
    let _ = child.start_kill();
    let status = tokio::time::timeout(WAIT, child.wait()).await.ok().and_then(Result::ok);
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text).await;
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text).await;
    }
    (status.and_then(|s| s.code()), text)
}

#[tokio::test]
async fn bootstrap_answers_allow_deny_and_unauthorized_through_the_runtime_api() {
    let jwks = fixture::jwks_server().await;
    let api = RuntimeApi::start().await;
    let child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &jwt_env(&jwks.url("/jwks")));
    assert!(api.wait_first_poll(WAIT).await.is_some(), "the function asks for work after init");

    let token = keys().rsa.sign(&claims());
    let allow = api.invoke(&events::request(Some(&format!("Bearer {token}")), Some(&pki().client)), WAIT).await;
    let Some(Outcome::Response(allow)) = allow else { panic!("expected a response, got {allow:?}") };
    assert_eq!(allow["principalId"], "user-123");
    assert_eq!(allow["policyDocument"]["Version"], "2012-10-17");
    assert_eq!(allow["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(allow["context"]["cert_thumbprint"], json!(pki().client.thumbprint));
    assert!(allow["context"].as_object().unwrap().values().all(|v| !v.is_object() && !v.is_array()), "context is flat");

    let unauthorized = api.invoke(&events::request(None, Some(&pki().client)), WAIT).await;
    let Some(Outcome::Error(error)) = unauthorized else { panic!("expected an error, got {unauthorized:?}") };
    assert_eq!(error["errorMessage"], "Unauthorized", "API Gateway needs exactly this message for a 401");

    let post_arn = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/pets";
    let event =
        events::request_for(post_arn, "POST", "/pets", "/pets", Some(&format!("Bearer {token}")), Some(&pki().client));
    let Some(Outcome::Response(deny)) = api.invoke(&event, WAIT).await else { panic!("expected a Deny response") };
    assert!(deny["context"]["challenge"].as_str().unwrap().contains("insufficient_scope"));
    assert!(deny["policyDocument"]["Statement"].as_array().unwrap().iter().any(|s| s["Effect"] == "Deny"));

    let (_, logs) = output_of(child).await;
    let decisions: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "authorization decision")
        .collect();
    assert_eq!(decisions.len(), 3, "one log line per decision:\n{logs}");
    let labels: Vec<&str> = decisions.iter().map(|d| d["fields"]["decision"].as_str().unwrap()).collect();
    assert_eq!(labels, ["allow", "unauthorized", "deny"]);
    assert_eq!(decisions[0]["fields"]["request_id"], "req-000001");
    assert!(decisions[0]["fields"]["latency_us"].as_u64().is_some());
    assert_eq!(decisions[2]["fields"]["reason"], "insufficient_scope");
    assert!(!logs.contains(&token), "the token never reaches the logs");
    assert!(!logs.contains(token.split('.').nth(2).unwrap()), "not even its signature");
}

#[tokio::test]
async fn bad_configuration_fails_init_and_names_the_variable() {
    let api = RuntimeApi::start().await;
    let child = spawn_function(
        &e2e::workspace_binary("debug", "bootstrap"),
        &api,
        &[("TOKEN_VALIDATION", "jwt".into()), ("JWKS_URI", "http://idp.example.com/jwks".into())],
    );
    let status = tokio::time::timeout(WAIT, async {
        let mut child = child;
        let status = child.wait().await.unwrap();
        (status, child)
    })
    .await
    .expect("the function exits");
    assert!(!status.0.success());
    let (_, logs) = output_of(status.1).await;
    assert!(logs.contains("JWKS_URI"), "{logs}");
    assert!(logs.contains("https"), "{logs}");
    assert!(api.wait_first_poll(Duration::from_millis(200)).await.is_none(), "no request is ever served");
}

#[tokio::test]
async fn private_ca_for_the_identity_provider_through_ssl_cert_file() {
    let ca = e2e::certs::Ca::new("Private IdP CA");
    let document = fixture::published_jwks();
    let jwks = TestServer::start_tls(&ca.server("localhost"), move |_| Reply::json(&document)).await;
    let dir = std::env::temp_dir().join(format!("authorizer-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let binary = e2e::workspace_binary("debug", "bootstrap");

    // Without the CA the JWKS fetch fails its TLS handshake, so init fails.
    let api = RuntimeApi::start().await;
    let mut child = spawn_function(&binary, &api, &jwt_env(&jwks.url("/jwks")));
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").unwrap();
    assert!(!status.success());
    assert_eq!(jwks.request_count(), 0, "no HTTP request got through an untrusted TLS connection");

    // With SSL_CERT_FILE the same function starts and verifies tokens.
    let api = RuntimeApi::start().await;
    let mut env = jwt_env(&jwks.url("/jwks"));
    env.push(("SSL_CERT_FILE", bundle.to_string_lossy().into_owned()));
    let child = spawn_function(&binary, &api, &env);
    assert!(api.wait_first_poll(WAIT).await.is_some());
    let token = keys().ec256.sign(&claims());
    let outcome = api.invoke(&events::request(Some(&format!("Bearer {token}")), Some(&pki().client)), WAIT).await;
    assert!(
        matches!(outcome, Some(Outcome::Response(ref r)) if r["policyDocument"]["Statement"][0]["Effect"] == "Allow"),
        "{outcome:?}"
    );
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}

/// Lines of the certificate's base64 body: none may reach a log.
fn pem_body_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 20).collect()
}

#[tokio::test]
async fn no_log_level_prints_a_token_a_secret_or_a_certificate() {
    const SECRET: &str = "introspection-secret-value";
    const OPAQUE: &str = "opaque-token-value-2YotnFZFEjr1zCsicMWpAA";
    let answer = json!({"active": true, "scope": "pets:read", "sub": "u", "exp": e2e::now() + 300,
        "cnf": {"x5t#S256": pki().client.thumbprint}});
    let introspection = TestServer::start(move |_| Reply::json(&answer)).await;
    let jwks = fixture::jwks_server().await;
    let jwt = keys().rsa.sign(&claims());

    let introspection_env = vec![
        ("TOKEN_VALIDATION", "introspection".to_owned()),
        ("INTROSPECTION_ENDPOINT", introspection.url("/introspect")),
        ("INTROSPECTION_CLIENT_ID", "gateway".into()),
        ("INTROSPECTION_CLIENT_SECRET", SECRET.into()),
        ("ROUTES", fixture::ROUTES.into()),
    ];
    let mut jwt_env = jwt_env(&jwks.url("/jwks"));
    for (env, token) in [(introspection_env, OPAQUE), (std::mem::take(&mut jwt_env), jwt.as_str())] {
        let mut env = env;
        env.push(("RUST_LOG", "trace".into()));
        let api = RuntimeApi::start().await;
        let child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &env);
        assert!(api.wait_first_poll(WAIT).await.is_some(), "the function starts");
        let good = events::request(Some(&format!("Bearer {token}")), Some(&pki().client));
        assert!(matches!(api.invoke(&good, WAIT).await, Some(Outcome::Response(_))));
        let wrong_route = events::request_for(
            "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/pets",
            "POST",
            "/pets",
            "/pets",
            Some(&format!("Bearer {token}")),
            Some(&pki().other_client),
        );
        assert!(api.invoke(&wrong_route, WAIT).await.is_some());
        // An event of the wrong shape, with the token where a map belongs.
        let malformed = json!({"type": "REQUEST", "methodArn": events::METHOD_ARN,
            "headers": {"Authorization": format!("Bearer {token}")}, "requestContext": format!("Bearer {token}")});
        assert!(matches!(api.invoke(&malformed, WAIT).await, Some(Outcome::Error(_))));

        let (_, logs) = output_of(child).await;
        assert!(logs.lines().count() > 3, "trace logging is on:\n{logs}");
        assert!(!logs.contains(token), "the token reached the logs:\n{logs}");
        if let Some(signature) = token.split('.').nth(2) {
            assert!(!logs.contains(signature), "the token's signature reached the logs");
        }
        assert!(!logs.contains(SECRET), "the client secret reached the logs");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("gateway:{SECRET}"));
        assert!(!logs.contains(&basic), "the Basic credentials reached the logs");
        for line in pem_body_lines(&pki().client.pem).into_iter().chain(pem_body_lines(&pki().other_client.pem)) {
            assert!(!logs.contains(line), "the client certificate reached the logs");
        }
    }
}

/// The function's secret comes from Secrets Manager (moto, through a real
/// SigV4-signed call), named by `AUTHORIZER_SECRETS` and the version the
/// deployer wrote: the introspection endpoint gets the client secret it
/// never saw in the environment; a secret that is not there fails init,
/// naming the variable.
#[cfg(feature = "aws")]
#[tokio::test]
async fn the_client_secret_is_read_from_secrets_manager_at_init() {
    use base64::Engine as _;
    const SECRET: &str = "clientSecretFromSecretsManager";
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("gateway:{SECRET}")));
    let answer = json!({"active": true, "scope": "pets:read", "sub": "u", "exp": e2e::now() + 300,
        "cnf": {"x5t#S256": pki().client.thumbprint}});
    let introspection = TestServer::start(move |request| {
        if request.header("authorization") == Some(basic.as_str()) {
            Reply::json(&answer)
        } else {
            Reply::status(401, "{}")
        }
    })
    .await;
    let aws = e2e::deploy::clients().await;
    let name = format!("t-bootstrap-secret-{}", std::process::id());
    let created = aws
        .secretsmanager
        .create_secret()
        .name(&name)
        .secret_string(json!({"INTROSPECTION_CLIENT_SECRET": SECRET}).to_string())
        .send()
        .await
        .expect("the secret");
    let env = |secret: &str| {
        vec![
            ("TOKEN_VALIDATION", "introspection".to_owned()),
            ("INTROSPECTION_ENDPOINT", introspection.url("/introspect")),
            ("INTROSPECTION_CLIENT_ID", "gateway".into()),
            ("ROUTES", fixture::ROUTES.into()),
            ("AUTHORIZER_SECRETS", secret.to_owned()),
            ("AUTHORIZER_SECRETS_VERSION", created.version_id().expect("a version").to_owned()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_SESSION_TOKEN", "session".into()),
            ("AWS_ENDPOINT_URL", e2e::moto::endpoint()),
            ("RUST_LOG", "trace".into()),
        ]
    };
    let api = RuntimeApi::start().await;
    let child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &env(&name));
    assert!(api.wait_first_poll(WAIT).await.is_some(), "the function starts with its secret");
    let outcome = api.invoke(&events::request(Some("Bearer opaque-token-1234567890"), Some(&pki().client)), WAIT).await;
    let (_, logs) = output_of(child).await;
    assert!(
        matches!(outcome, Some(Outcome::Response(ref r)) if r["policyDocument"]["Statement"][0]["Effect"] == "Allow"),
        "the introspection endpoint got the secret: {outcome:?}\n{logs}"
    );
    assert!(!logs.contains(SECRET), "the secret reached the logs:\n{logs}");

    let api = RuntimeApi::start().await;
    let mut child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &env("no-such-secret"));
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("status");
    assert!(!status.success(), "init fails without its secret");
    let (_, logs) = output_of(child).await;
    assert!(logs.contains("AUTHORIZER_SECRETS") && logs.contains("ResourceNotFoundException"), "{logs}");
    aws.secretsmanager.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
}

/// The secret variables the team keeps itself, by reference: an SSM
/// SecureString and a Secrets Manager secret (moto's, through real
/// SigV4-signed calls), read once at init; a reference to nothing fails
/// init naming the variable and the reference.
#[cfg(feature = "aws")]
#[tokio::test]
async fn a_secret_variable_given_by_reference_is_read_from_ssm_or_secrets_manager_at_init() {
    use base64::Engine as _;
    const FROM_SSM: &str = "clientSecretFromSsmParameter";
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("gateway:{FROM_SSM}")));
    let answer = json!({"active": true, "scope": "pets:read", "sub": "u", "exp": e2e::now() + 300,
        "cnf": {"x5t#S256": pki().client.thumbprint}});
    let introspection = TestServer::start(move |request| {
        if request.header("authorization") == Some(basic.as_str()) {
            Reply::json(&answer)
        } else {
            Reply::status(401, "{}")
        }
    })
    .await;
    let aws = e2e::deploy::clients().await;
    let parameter = format!("/t-bootstrap/{}/introspection", std::process::id());
    aws.ssm
        .put_parameter()
        .name(&parameter)
        .value(FROM_SSM)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("the parameter");
    let env = |references: serde_json::Value| {
        vec![
            ("TOKEN_VALIDATION", "introspection".to_owned()),
            ("INTROSPECTION_ENDPOINT", introspection.url("/introspect")),
            ("INTROSPECTION_CLIENT_ID", "gateway".into()),
            ("ROUTES", fixture::ROUTES.into()),
            ("AUTHORIZER_SECRET_REFERENCES", references.to_string()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_ENDPOINT_URL", e2e::moto::endpoint()),
        ]
    };
    let request = events::request(Some("Bearer opaque-token-1234567890"), Some(&pki().client));
    let allowed = |outcome: &Option<Outcome>| matches!(outcome, Some(Outcome::Response(r)) if r["policyDocument"]["Statement"][0]["Effect"] == "Allow");

    // From SSM, decrypted.
    let api = RuntimeApi::start().await;
    let from_ssm = env(json!({"INTROSPECTION_CLIENT_SECRET": format!("ssm:{parameter}")}));
    let child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &from_ssm);
    assert!(api.wait_first_poll(WAIT).await.is_some(), "the function starts with its secret");
    let outcome = api.invoke(&request, WAIT).await;
    let (_, logs) = output_of(child).await;
    assert!(allowed(&outcome), "the introspection endpoint got the SSM value: {outcome:?}\n{logs}");
    assert!(!logs.contains(FROM_SSM), "the secret reached the logs:\n{logs}");

    // From Secrets Manager: the secret's own text (here, the same value).
    let name = format!("t-bootstrap-reference-{}", std::process::id());
    aws.secretsmanager.create_secret().name(&name).secret_string(FROM_SSM).send().await.expect("the secret");
    let api = RuntimeApi::start().await;
    let from_secrets = env(json!({"INTROSPECTION_CLIENT_SECRET": format!("secretsmanager:{name}")}));
    let child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &from_secrets);
    assert!(api.wait_first_poll(WAIT).await.is_some(), "the function starts with its secret");
    let outcome = api.invoke(&request, WAIT).await;
    let (_, logs) = output_of(child).await;
    assert!(allowed(&outcome), "the introspection endpoint got the secret's text: {outcome:?}\n{logs}");

    // A reference to nothing: init fails, naming the variable and what it reads.
    let api = RuntimeApi::start().await;
    let missing = env(json!({"INTROSPECTION_CLIENT_SECRET": "ssm:/t-bootstrap/no-such-parameter"}));
    let mut child = spawn_function(&e2e::workspace_binary("debug", "bootstrap"), &api, &missing);
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("status");
    assert!(!status.success(), "init fails without its secret");
    let (_, logs) = output_of(child).await;
    assert!(
        logs.contains("INTROSPECTION_CLIENT_SECRET") && logs.contains("ssm:/t-bootstrap/no-such-parameter"),
        "{logs}"
    );
    assert!(logs.contains("ParameterNotFound"), "{logs}");
    aws.ssm.delete_parameter().name(&parameter).send().await.expect("deleted");
    aws.secretsmanager.delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await.unwrap();
}
