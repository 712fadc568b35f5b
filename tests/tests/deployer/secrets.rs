//! Every channel the deployer writes to, swept for the run's secrets: the
//! values of `${env:…}` in `authorizer.environment` (the only place one is
//! taken) must never appear in clear, whether the deployer formats them
//! (diffs, saved plans, JSON, "AWS changed since the plan", stack errors) or
//! AWS quotes them back (Lambda's 4 KB error quotes the whole environment).

use e2e::aws_like::Behaviours;
use e2e::deploy::{Outcome, StackDir, TIME_SCALE, clean_slate, deployer, stack_yaml};
use e2e::moto::Proxy;

/// A secret variable (kept in Secrets Manager) and a plain variable taken
/// from the environment (in the function's environment, still masked).
const SECRET: &str = "sweep-secret-7f3a91d0";
const CLIENT_ID: &str = "sweep-client-id-c42e5b";
const ROTATED_SECRET: &str = "sweep-rotated-secret-5b0d17";
const ROTATED_CLIENT_ID: &str = "sweep-rotated-id-e19a44";
/// What an invalid value from the environment is (the authorizer's parser
/// quotes the URL it refuses).
const BAD_ENDPOINT: &str = "sweep-endpoint-not-a-url-88aa";
const MARKERS: [&str; 5] = [SECRET, CLIENT_ID, ROTATED_SECRET, ROTATED_CLIENT_ID, BAD_ENDPOINT];

/// Everything a run printed and the files it wrote, for the sweep.
struct Printed(Vec<(String, String)>);

impl Printed {
    fn run(&mut self, what: &str, outcome: &Outcome) {
        self.0.push((format!("{what}: stdout"), outcome.stdout.clone()));
        self.0.push((format!("{what}: stderr"), outcome.stderr.clone()));
    }

    fn file(&mut self, stack: &StackDir, file: &str) {
        let text = std::fs::read_to_string(stack.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        self.0.push((file.to_owned(), text));
    }
}

fn env(secret: &'static str, client_id: &'static str) -> [(&'static str, &'static str); 3] {
    [("INTROSPECTION_SECRET", secret), ("CLIENT_ID", client_id), ("ENDPOINT", "https://idp.example.com/introspect")]
}

#[tokio::test]
async fn no_command_prints_or_saves_a_secret_in_clear() {
    let name = "t-sweep";
    let yaml =
        stack_yaml(name, "").replace("INTROSPECTION_CLIENT_ID: gateway", "INTROSPECTION_CLIENT_ID: ${env:CLIENT_ID}");
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    // (Cleaned with the plain file: the slate is cleaned without CLIENT_ID.)
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    clean_slate(&stack, &proxy).await;
    stack.write("stack.yaml", &yaml);
    let mut printed = Printed(Vec::new());
    let first = env(SECRET, CLIENT_ID);
    let rotated = env(ROTATED_SECRET, ROTATED_CLIENT_ID);
    let url = proxy.url();
    let run = |args: Vec<String>, env: [(&'static str, &'static str); 3]| {
        let (stack, url) = (&stack, &url);
        async move { deployer(stack, url, &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await }
    };
    // Saved plans go beside stack.yaml.
    let first_plan = stack.path("first.json").display().to_string();
    let rotated_plan = stack.path("rotated.json").display().to_string();
    let args = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    // The first deployment: the plan, in text and JSON, saved, carried out.
    for command in [args(&["diff"]), args(&["diff", "--json"]), args(&["plan", "--out", &first_plan])] {
        let outcome = run(command.clone(), first).await;
        assert!(outcome.code == 0, "{command:?}: {}\n{}", outcome.stdout, outcome.stderr);
        printed.run(&command.join(" "), &outcome);
    }
    printed.file(&stack, "first.json");
    let applied = run(args(&["apply", &first_plan]), first).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    printed.run("apply first.json", &applied);

    // Both values rotated: each shown changed, masked on both sides.
    let diff = run(args(&["diff", "--json"]), rotated).await;
    printed.run("diff --json (rotated)", &diff);
    let plan: serde_json::Value = serde_json::from_str(&diff.stdout).expect("a JSON plan");
    let fields = plan.to_string();
    assert!(fields.contains("INTROSPECTION_CLIENT_ID") && fields.contains("(sensitive)"), "{fields}");
    let saved = run(args(&["plan", "--out", &rotated_plan]), rotated).await;
    assert_eq!(saved.code, 0, "{}\n{}", saved.stdout, saved.stderr);
    printed.run("plan --out rotated.json", &saved);
    printed.file(&stack, "rotated.json");

    // AWS moves after the plan: the refusal names what was planned and what is now.
    let aws = e2e::deploy::clients_at(&proxy.url()).await;
    let function = format!("{name}-authorizer");
    aws.lambda.update_function_configuration().function_name(&function).memory_size(1024).send().await.expect("drift");
    let moved = run(args(&["apply", &rotated_plan]), rotated).await;
    assert_ne!(moved.code, 0, "the plan no longer holds: {}\n{}", moved.stdout, moved.stderr);
    assert!(moved.stderr.contains("AWS no longer matches what the saved plan was made from"), "{}", moved.stderr);
    printed.run("apply rotated.json (moved)", &moved);
    let converged = run(args(&["apply"]), rotated).await;
    assert_eq!(converged.code, 0, "{}\n{}", converged.stdout, converged.stderr);
    printed.run("apply (rotated)", &converged);
    printed.run("output --json", &run(args(&["output", "--json"]), rotated).await);

    // A value the authorizer refuses, from the environment: the error names
    // the variable, not the value.
    stack.write("stack.yaml", yaml.replace("https://idp.example.com/introspect", "${env:ENDPOINT}"));
    let mut bad = rotated;
    bad[2].1 = BAD_ENDPOINT;
    let refused = run(args(&["diff"]), bad).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("authorizer.environment.INTROSPECTION_ENDPOINT"), "{}", refused.stderr);
    printed.run("diff (bad endpoint)", &refused);

    // AWS quotes the environment back. The deployer refuses an environment
    // over Lambda's limit before any call, so this proxy's Lambda has a
    // lower one: the update back to the first values is refused as Lambda
    // refuses, with the whole environment in the error.
    let strict =
        Proxy::aws_like(Behaviours { lambda_environment_limit: Some(256), ..Behaviours::none(TIME_SCALE) }).await;
    stack.write("stack.yaml", &yaml);
    let quoted = deployer(&stack, &strict.url(), &["apply"], &first).await;
    assert_ne!(quoted.code, 0, "{}\n{}", quoted.stdout, quoted.stderr);
    assert!(quoted.stderr.contains("String measured: {"), "AWS quoted the environment: {}", quoted.stderr);
    assert_eq!(strict.behaviour_counts().get("lambda_environment_limit"), Some(&1));
    printed.run("apply (AWS quotes the environment)", &quoted);

    stack.write("stack.yaml", &yaml);
    let teardown = run(args(&["teardown"]), rotated).await;
    assert_eq!(teardown.code, 0, "{}\n{}", teardown.stdout, teardown.stderr);
    printed.run("teardown", &teardown);

    for (channel, text) in &printed.0 {
        for marker in MARKERS {
            assert!(!text.contains(marker), "{channel} shows {marker}:\n{text}");
        }
    }
    let masked = printed.0.iter().filter(|(_, text)| text.contains("(sensitive)")).count();
    assert!(masked >= 6, "the secrets were shown masked where they changed: {masked} channels");
}

/// A secret variable the team keeps in SSM itself: the deployer never reads
/// it, writes only where it is (compared like any setting, so a plan needs
/// no secret), and lets the function's role read exactly that parameter.
#[tokio::test]
async fn a_secret_kept_by_the_team_is_named_never_read() {
    let name = "t-reference";
    let yaml = stack_yaml(name, "").replace("${env:INTROSPECTION_SECRET}", "${ssm:/t-reference/introspection}");
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = StackDir::new(name, &yaml);
    clean_slate(&stack, &proxy).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &[]).await;
    assert_eq!(apply.code, 0, "no secret given: {}\n{}", apply.stdout, apply.stderr);

    let aws = e2e::deploy::clients().await;
    let function =
        aws.lambda.get_function().function_name(format!("{name}-authorizer")).send().await.expect("function");
    let variables = function.configuration().and_then(|c| c.environment()).and_then(|e| e.variables()).cloned();
    let variables = variables.unwrap_or_default();
    assert_eq!(
        variables.get("AUTHORIZER_SECRET_REFERENCES").map(String::as_str),
        Some(r#"{"INTROSPECTION_CLIENT_SECRET":"ssm:/t-reference/introspection"}"#)
    );
    assert!(!variables.contains_key("INTROSPECTION_CLIENT_SECRET") && !variables.contains_key("AUTHORIZER_SECRETS"));
    let secret =
        aws.secretsmanager.describe_secret().secret_id(format!("oauth-gateway/{name}/authorizer")).send().await;
    assert!(secret.is_err(), "no secret of the deployer's own: {secret:?}");

    let role = format!("{name}-authorizer-exec");
    let policy = aws.iam.get_role_policy().role_name(&role).policy_name("read-authorizer-secret").send().await;
    let document = policy.map(|p| p.policy_document().to_owned()).unwrap_or_default();
    let document = percent_encoding::percent_decode_str(&document).decode_utf8_lossy().into_owned();
    assert!(
        document.contains("ssm:GetParameter")
            && document.contains(":ssm:eu-west-1:123456789012:parameter/t-reference/introspection\""),
        "the role reads exactly that parameter: {document}"
    );

    let plan = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &[]).await;
    assert_eq!(plan.code, 0, "converged, and compared without a secret: {}\n{}", plan.stdout, plan.stderr);
    assert!(!plan.stdout.contains("Not compared"), "{}", plan.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &[]).await.code, 0);
}
