//! The end of `scripts/quickstart`: the example stack.yaml served by
//! `deployer local`, with a local identity provider (JWKS on 127.0.0.1) and a
//! freshly made client CA, and five requests that show why a stolen token is
//! useless. Exits 1 if any answer is not the one API Gateway would give.
//!
//! The example stack is used as it is, except for three things that only
//! exist on the internet or in your organisation: the JWKS URI (given with
//! `--env`), the truststore file and the WAF allowlist (a copy of the stack
//! with those two fields changed, under target/local-demo/).

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use e2e::certs::ClientCertificate;
use e2e::fixture;
use e2e::local::{DOMAIN, Launch, LocalEdge, LocalPki, echo_backend};

/// One request of the demo: what it is, who sends it from where, and the
/// status API Gateway would answer (None: no TLS handshake).
struct Case<'a> {
    what: &'a str,
    certificate: Option<&'a ClientCertificate>,
    source: Option<IpAddr>,
    token: &'a str,
    expected: Option<u16>,
}

struct Outcome {
    status: Option<u16>,
    shown: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let root = e2e::workspace_root();
    let directory = root.join("target/local-demo");
    std::fs::create_dir_all(&directory)?;
    let pki = Arc::new(LocalPki::new());
    let jwks = fixture::jwks_server().await;
    let backend = echo_backend().await;
    let truststore = directory.join("truststore.pem");
    std::fs::write(&truststore, &pki.ca.pem)?;

    let mut stack: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(root.join("stack.yaml"))?)?;
    stack["domain"]["truststore"]["file"] = truststore.display().to_string().into();
    stack["waf"]["allow"] = serde_yaml::to_value(["127.0.0.1/32"])?;
    let stack_file = directory.join("stack.yaml");
    std::fs::write(&stack_file, serde_yaml::to_string(&stack)?)?;

    let jwks_uri = jwks.url("/jwks");
    println!("\n== deployer local: the example stack on this machine ==");
    println!("   copy of stack.yaml with domain.truststore.file = a new CA, waf.allow = [127.0.0.1/32]");
    println!(
        "   deployer --stack {} local --env JWKS_URI={jwks_uri} --backend {}",
        stack_file.display(),
        backend.url("")
    );
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| root.join("target").display().to_string());
    let launch = Launch {
        deployer: e2e::workspace_binary("debug", "deployer"),
        stack: stack_file,
        arguments: vec!["--env".into(), format!("JWKS_URI={jwks_uri}")],
        environment: vec![("CARGO_TARGET_DIR".into(), target)],
        keep_access_log: true,
    };
    let edge = LocalEdge::launch(launch, pki.clone(), jwks, backend, directory.join("run"))
        .await
        .map_err(|stderr| anyhow::anyhow!("deployer local did not start:\n{stderr}"))?;
    for note in edge.stderr().lines().filter(|l| l.starts_with("note:")) {
        println!("   {note}");
    }
    println!(
        "   listening on {} (the client below resolves {DOMAIN}, the name of the server certificate it trusts)\n",
        edge.address
    );

    let reader = edge.token("pets:read", &pki.client);
    let no_scope = edge.token("profile", &pki.client);
    let outside: IpAddr = "127.0.0.2".parse()?;
    let case = |what, certificate, source, token, expected| Case { what, certificate, source, token, expected };
    let cases = [
        case("client-a's certificate + its bound token", Some(&pki.client), None, &reader, Some(200)),
        case("the same token from client-b (same CA)", Some(&pki.other_client), None, &reader, Some(401)),
        case("no client certificate", None, None, &reader, None),
        case("from 127.0.0.2, outside waf.allow", Some(&pki.client), Some(outside), &reader, Some(403)),
        case("client-a's token without pets:read", Some(&pki.client), None, &no_scope, Some(403)),
    ];
    let mut all_as_expected = true;
    for case in cases {
        let outcome = send(&edge, case.certificate, case.source, case.token).await;
        let verdict = if outcome.status == case.expected { "as expected" } else { "UNEXPECTED" };
        all_as_expected &= outcome.status == case.expected;
        println!("   GET /v1/pets/7  {:<42} → {}  [{verdict}]", case.what, outcome.shown);
    }
    println!(
        "\n   A stolen token is useless without its certificate's private key; the access log (stdout of\n   deployer local) has one JSON line per request and never the token.\n"
    );
    edge.stop().await;
    Ok(all_as_expected)
}

async fn send(
    edge: &LocalEdge,
    certificate: Option<&ClientCertificate>,
    source: Option<IpAddr>,
    token: &str,
) -> Outcome {
    let client = edge.client_from(certificate, source);
    let answer = match client.get(edge.url("/pets/7")).bearer_auth(token).send().await {
        Ok(answer) => answer,
        Err(_) => return Outcome { status: None, shown: "TLS handshake refused".into() },
    };
    let status = answer.status().as_u16();
    let challenge = answer.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let shown = match (status, challenge) {
        (200, _) => format!(
            "200, the backend got X-Sub: {}, X-Client-Cert-Thumbprint: {}",
            body["headers"]["x-sub"].as_str().unwrap_or("-"),
            body["headers"]["x-client-cert-thumbprint"].as_str().unwrap_or("-")
        ),
        (status, Some(challenge)) => format!("{status}, WWW-Authenticate: {challenge}"),
        (status, None) => format!("{status} {body}"),
    };
    Outcome { status: Some(status), shown }
}
