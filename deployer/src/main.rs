//! `deployer diff | plan | apply | teardown | output | verify`: the command line,
//! wiring and exit codes.
//!
//! Exit status is an interface pipelines rely on: 0 success (for `diff` or
//! `plan` with `--detailed-exitcode`: no changes), 2 changes pending (with
//! `--detailed-exitcode` only), 3 `apply` did everything it could but a
//! certificate still waits for its DNS validation record (run it again
//! once the record exists), 4 `verify` found a promise broken, 1 error.
//! Nothing ever prompts; progress goes to stderr, plans and outputs to stdout.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;

use clap::Parser as _;
use deployer::cli::{Cli, Command};
use deployer::commands::{self, Prepared};
use deployer::plan::Plan;
use deployer::stack::{Stack, Unset};

/// `deployer local` moves many small buffers between tasks on different
/// threads; glibc's allocator serialises those frees on its arena locks
/// (measured: a fifth of the edge's time in malloc, free and the futexes
/// behind them). mimalloc frees to the owning thread's heap without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `apply`'s exit code when a certificate still waits for its DNS record.
const WAITING_FOR_DNS_VALIDATION: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    if let Command::Kinds = cli.command {
        print!("{}", deployer::graph::table());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Schema = cli.command {
        print!("{}", deployer::stack::schema::json_schema());
        return Ok(ExitCode::SUCCESS);
    }
    // Everything that can be checked without AWS is checked before the first call.
    // `policy` and `bootstrap` depend on no `${env:…}` value: whoever sets
    // the roles up need not hold the pipeline's secrets.
    let policy_only = matches!(cli.command, Command::Policy { .. } | Command::Bootstrap);
    // `local --env NAME=VALUE` overrides go through the same checks as the file.
    let overrides = match &cli.command {
        Command::Local { environment, .. } => environment
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
                _ => Err(anyhow::anyhow!("--env {pair:?}: expected NAME=VALUE")),
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let env = |name: &str| std::env::var(name).ok().or_else(|| policy_only.then(|| format!("unset-{name}")));
    // What writes no secret (a plan not saved for apply, outputs, teardown)
    // runs without the secrets' values: a pull request's plan is given none.
    let stack = match &cli.command {
        Command::Diff { out: None, .. } => Stack::load_without_secrets(&cli.stack, &env, Unset::SecretsUnknown)?,
        Command::Output | Command::Teardown | Command::Verify { .. } => {
            Stack::load_without_secrets(&cli.stack, &env, Unset::SecretsIgnored)?
        }
        _ => Stack::load_with_overrides(&cli.stack, &env, &overrides)?,
    };
    if let Command::Local {
        listen,
        backend,
        bootstrap,
        environment: _,
        concurrency,
        tls_cert,
        tls_key,
        access_log,
        function_log,
        dpop_replay_table,
    } = &cli.command
    {
        let options = deployer::local::Options {
            listen: *listen,
            bootstrap: bootstrap.clone(),
            backend: backend.clone(),
            tls: tls_cert.clone().zip(tls_key.clone()),
            workspace: workspace_of(&cli.stack),
            concurrency: *concurrency,
            access_log: access_log.clone(),
            function_log: function_log.clone(),
            dpop_replay_table: dpop_replay_table.clone(),
        };
        deployer::local::serve(&stack, options, |address, prefix| {
            println!("{}", serde_json::json!({"listening": format!("https://{address}{prefix}"), "stack": stack.name}));
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Verify { .. } = &cli.command {
        return verify(cli, &stack).await;
    }
    if let Command::Policy { account: Some(account), read_only, operator, split } = &cli.command {
        // Everything it needs is in the stack file: no AWS call.
        let region = stack
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .context("no AWS region: set `region` in stack.yaml or AWS_REGION")?;
        let partition = deployer::policy::partition_of(&region);
        let target = deployer::policy::Target { account, region: &region, partition };
        print_policy(cli, &stack, &target, *read_only, *operator, *split)?;
        return Ok(ExitCode::SUCCESS);
    }
    let saved = match &cli.command {
        Command::Apply { plan: Some(path), .. } => Some((commands::load_saved(path)?, path)),
        _ => None,
    };
    // Only commands that may create or update the function need its code; a
    // saved plan brings the exact zip it was made with.
    let package = match (&cli.command, &saved) {
        (Command::Teardown | Command::Output | Command::Policy { .. } | Command::Bootstrap, _) => None,
        (_, Some((saved, path))) => commands::saved_artifact(saved, path, &stack)?,
        _ => Some(deployer::package::load(
            &stack.authorizer.code,
            stack.authorizer.architecture,
            &workspace_of(&cli.stack),
        )?),
    };
    let mut aws = deployer::aws::Aws::connect(stack.region.as_deref()).await?;
    if let Command::Apply { wait_for_certificate, .. } = &cli.command {
        let zone = stack.domain.as_ref().is_some_and(|d| d.hosted_zone_id.is_some());
        aws.certificate_wait = match (wait_for_certificate, zone) {
            (Some(seconds), _) => Duration::from_secs(*seconds),
            (None, true) => deployer::aws::CERTIFICATE_WAIT_WITH_HOSTED_ZONE,
            (None, false) => deployer::aws::CERTIFICATE_WAIT,
        };
    }
    stack.check_region(&aws.region)?;
    if let Some((saved, _)) = &saved {
        commands::check_saved(saved, &stack, &aws)?;
    }
    let desired = commands::desired(&stack, &aws, package.as_ref())?;
    let lease = Duration::from_secs(cli.lock_lease.max(1));
    let wait = Duration::from_secs(cli.lock_timeout);

    match &cli.command {
        Command::Diff { detailed_exitcode, out } => {
            let prepared = commands::prepare(&aws, &stack, &desired, false).await?;
            show(cli, &prepared.planned.plan)?;
            if let Some(path) = out {
                commands::save(&stack, &aws, &prepared.planned.plan, package.as_ref(), path)?;
                eprintln!("Plan saved to {}; carry it out with `deployer apply {}`.", path.display(), path.display());
            }
            let pending = prepared.planned.plan.has_changes();
            Ok(if *detailed_exitcode && pending { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        Command::Policy { read_only, operator, split, .. } => {
            let target =
                deployer::policy::Target { account: &aws.account, region: &aws.region, partition: &aws.partition };
            print_policy(cli, &stack, &target, *read_only, *operator, *split)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bootstrap => bootstrap(cli, &aws, &stack, &desired).await,
        Command::Output => {
            let observed = deployer::observe::observe(&aws, &stack.name, &desired).await?;
            let outputs = commands::outputs(&stack, &aws, &observed);
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&outputs)?);
            } else {
                print!("{outputs}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { .. } => {
            let held = commands::lock(&aws, &stack, "apply", lease, wait).await?;
            let result = apply(cli, &aws, &stack, &desired, saved.as_ref().map(|(s, _)| &s.plan), &held.lost()).await;
            finish(held, result).await
        }
        Command::Local { .. } | Command::Kinds | Command::Schema | Command::Verify { .. } => {
            unreachable!("answered before AWS is contacted")
        }
        Command::Teardown => {
            let held = commands::lock(&aws, &stack, "teardown", lease, wait).await?;
            let result = teardown(cli, &aws, &stack, &desired, &held.lost()).await;
            // (The lock bucket stays, empty: deleted, its name would be free for
            // any account to take, and the next run here would find it theirs.)
            finish(held, result).await
        }
    }
}

/// `verify`'s exit code when a promise is broken.
const PROMISE_BROKEN: u8 = 4;

/// `deployer verify`: the checks against the stage, reported.
async fn verify(cli: &Cli, stack: &Stack) -> anyhow::Result<ExitCode> {
    use deployer::verify::{self, checks, client::Target, tokens};
    let Command::Verify {
        url,
        connect_to,
        server_ca,
        cert,
        key,
        second_cert,
        second_key,
        token_command,
        echo_path,
        execute_api_url,
        outside_allowlist,
        junit,
        access_log,
        function_log,
    } = &cli.command
    else {
        unreachable!("called for verify")
    };
    let base = match url {
        Some(url) => url.clone(),
        None => verify::default_url(stack)?,
    };
    let server_ca =
        server_ca.as_ref().map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display()))).transpose()?;
    let target = Target::new(base, *connect_to, server_ca);
    let client = tokens::Credential::read(cert.clone(), key.clone())?;
    let second = match (second_cert, second_key) {
        (Some(cert), Some(key)) => Some(tokens::Credential::read(cert.clone(), key.clone())?),
        _ => None,
    };
    // AWS only for what the command line does not give (the API's default
    // endpoint, the logs in CloudWatch), connected once, when first needed.
    let aws = tokio::sync::OnceCell::new();
    let connect = || {
        aws.get_or_init(|| async {
            deployer::aws::Aws::connect(stack.region.as_deref()).await.map_err(|e| format!("no AWS access ({e:#})"))
        })
    };
    let execute_api = match execute_api_url {
        Some(url) => checks::ExecuteApi::At(url.clone()),
        None => match connect().await {
            Ok(aws) => default_endpoint(aws, stack).await,
            Err(why) => checks::ExecuteApi::Unknown(format!("{why}: give --execute-api-url")),
        },
    };
    // Log lines from a minute before the run on (clocks differ a little).
    let since_ms = i64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis(),
    )
    .unwrap_or_default()
        - 60_000;
    let source = async |file: &Option<PathBuf>, group: String| match file {
        Some(path) => verify::facts::Source::File(path.clone()),
        None => match connect().await {
            Ok(aws) => verify::facts::Source::CloudWatch { logs: aws.logs.clone(), group, since_ms },
            Err(why) => verify::facts::Source::Unavailable(why.clone()),
        },
    };
    let access = match (&stack.stage.access_log, access_log) {
        (None, None) => verify::facts::Source::Unavailable(
            "stage.access_log is not set: API Gateway keeps no access log to read".into(),
        ),
        _ => source(access_log, deployer::stack::names::access_log_group(&stack.name, &stack.stage.name)).await,
    };
    let function = source(function_log, deployer::stack::names::function_log_group(&stack.name)).await;
    let logs = verify::facts::Logs { access, function };
    let tokens = token_command.clone().map(tokens::TokenCommand::new);
    let inputs = checks::Inputs {
        stack,
        target: &target,
        client: &client,
        second: second.as_ref(),
        tokens: tokens.as_ref(),
        echo_path: echo_path.as_deref(),
        execute_api,
        outside_allowlist: *outside_allowlist,
        logs: &logs,
    };
    let report = verify::verify(&inputs).await?;
    eprint!("{report}");
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    }
    if let Some(path) = junit {
        std::fs::write(path, report.junit()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.holds() { ExitCode::SUCCESS } else { ExitCode::from(PROMISE_BROKEN) })
}

/// The stage's execute-api URL, from the API's id in AWS, or why it is not known.
async fn default_endpoint(aws: &deployer::aws::Aws, stack: &Stack) -> deployer::verify::checks::ExecuteApi {
    use deployer::verify::checks::ExecuteApi;
    let found = async {
        let id = deployer::resources::rest_api::find_id(aws, stack).await?;
        let id = id.context("the stack's REST API does not exist")?;
        deployer::verify::execute_api_url(&id, &aws.region, &stack.stage.name)
    };
    match found.await {
        Ok(url) => ExecuteApi::At(url),
        Err(e) => ExecuteApi::Unknown(format!("the default endpoint's URL is unknown ({e:#}): give --execute-api-url")),
    }
}

/// Releases the lock whatever happened; the run's own error comes first.
async fn finish(held: deployer::lock::Held, result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    let released = held.release().await;
    let code = result?;
    released?;
    Ok(code)
}

async fn apply(
    cli: &Cli,
    aws: &deployer::aws::Aws,
    stack: &Stack,
    desired: &[deployer::planner::Desired],
    saved: Option<&Plan>,
    lost: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let prepared = commands::prepare(aws, stack, desired, false).await?;
    if let Some(saved) = saved
        && let Some(why) = commands::moved(saved, &prepared.planned.plan)
    {
        anyhow::bail!("AWS no longer matches what the saved plan was made from; nothing was changed:\n{why}");
    }
    show(cli, &prepared.planned.plan)?;
    anyhow::ensure!(
        prepared.planned.plan.blockers.is_empty(),
        "apply is blocked; nothing was changed:\n  {}",
        prepared.planned.plan.blockers.join("\n  ")
    );
    let observed = if prepared.planned.plan.has_changes() {
        eprintln!("Applying...");
        let (report, after) = commands::execute(aws, stack, desired, &prepared, false, lost).await?;
        if report.only_waiting() {
            // Not a failure: a later run finishes once the DNS record exists.
            let why = commands::failure(&report).unwrap_or_default();
            eprintln!("Apply is waiting for DNS validation; everything else is done:\n{why}");
            if !cli.json {
                eprint!("{}", commands::outputs(stack, aws, &after));
            }
            return Ok(ExitCode::from(WAITING_FOR_DNS_VALIDATION));
        }
        if let Some(why) = commands::failure(&report) {
            anyhow::bail!("apply did not complete:\n{why}");
        }
        eprintln!("Apply complete.");
        after
    } else {
        let Prepared { observed, .. } = prepared;
        observed
    };
    if !cli.json {
        eprint!("{}", commands::outputs(stack, aws, &observed));
    }
    Ok(ExitCode::SUCCESS)
}

async fn teardown(
    cli: &Cli,
    aws: &deployer::aws::Aws,
    stack: &Stack,
    desired: &[deployer::planner::Desired],
    lost: &AtomicBool,
) -> anyhow::Result<ExitCode> {
    let prepared = commands::prepare(aws, stack, desired, true).await?;
    for (address, found) in prepared.observed.all() {
        if found.ownership == deployer::resources::Ownership::Adopted && found.parent.is_none() {
            eprintln!("  leaving {address}: adopted, not created by this stack");
        }
    }
    if !prepared.planned.plan.has_changes() && !cli.json {
        println!("Nothing to tear down: no resource of stack {:?} exists.", stack.name);
        return Ok(ExitCode::SUCCESS);
    }
    show(cli, &prepared.planned.plan)?;
    if prepared.planned.plan.has_changes() {
        let (report, _) = commands::execute(aws, stack, desired, &prepared, true, lost).await?;
        if let Some(why) = commands::failure(&report) {
            anyhow::bail!("teardown did not complete; left in place:\n{why}");
        }
        eprintln!("Teardown complete.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `deployer bootstrap`: the operator's resources, with the operator's credentials.
async fn bootstrap(
    cli: &Cli,
    aws: &deployer::aws::Aws,
    stack: &Stack,
    desired: &[deployer::planner::Desired],
) -> anyhow::Result<ExitCode> {
    let prepared = commands::prepare_bootstrap(aws, stack, desired).await?;
    show(cli, &prepared.planned.plan)?;
    if prepared.planned.plan.has_changes() {
        let stop = AtomicBool::new(false);
        let runner = deployer::planner::Runner::Operator;
        let (report, _) = commands::execute_as(runner, aws, stack, desired, &prepared, false, &stop).await?;
        if let Some(why) = commands::failure(&report) {
            anyhow::bail!("bootstrap did not complete:\n{why}");
        }
        eprintln!("Bootstrap complete: the pipeline's role can now apply stack {:?}.", stack.name);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_policy(
    cli: &Cli,
    stack: &Stack,
    target: &deployer::policy::Target<'_>,
    read_only: bool,
    operator: bool,
    split: bool,
) -> anyhow::Result<()> {
    let policy = match (operator, read_only) {
        (true, _) => deployer::policy::operator_document(stack, target),
        (false, true) => deployer::policy::document(stack, target).read_only(),
        (false, false) => deployer::policy::document(stack, target),
    };
    match (cli.json, split) {
        (true, false) => println!("{}", serde_json::to_string_pretty(&policy).context("serialising the policy")?),
        (true, true) => {
            println!("{}", serde_json::to_string_pretty(&policy.parts()).context("serialising the policy")?)
        }
        (false, false) => print!("{policy}"),
        (false, true) => {
            for (i, part) in policy.parts().iter().enumerate() {
                let statements: Vec<&str> = part.statements.iter().map(|s| s.sid.as_str()).collect();
                println!("part {} ({} characters): {}", i + 1, part.size(), statements.join(", "));
            }
        }
    }
    Ok(())
}

fn show(cli: &Cli, plan: &Plan) -> anyhow::Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(plan).context("serialising the plan")?);
    } else {
        print!("{plan}");
    }
    Ok(())
}

/// The workspace that holds the stack file (for `code.build`).
fn workspace_of(stack: &Path) -> PathBuf {
    let dir = stack.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.to_path_buf()
}
