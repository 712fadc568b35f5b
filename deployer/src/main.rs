//! `deployer apply | diff | teardown`: the command line, wiring and exit codes.
//!
//! Exit status is an interface pipelines rely on: 0 success (for `diff
//! --detailed-exitcode`: no changes), 2 changes pending (`diff
//! --detailed-exitcode` only), 1 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use deployer::engine::{self, Mode};
use deployer::plan::Plan;
use deployer::stack::Stack;

#[derive(Parser)]
#[command(version, about = "Converge AWS (IAM, Lambda, API Gateway, ACM, S3, WAF) to stack.yaml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The stack file.
    #[arg(long, global = true, default_value = "stack.yaml")]
    stack: PathBuf,
    /// Print the plan as JSON on stdout (progress goes to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Show what apply would change; never writes.
    Diff {
        /// Exit 0 when AWS matches the stack, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Print the plan, then carry it out.
    Apply,
    /// Delete everything the stack created (and nothing else).
    Teardown,
}

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
    // Everything that can be checked without AWS is checked before the first call.
    let stack = Stack::load(&cli.stack, &|name| std::env::var(name).ok())?;
    // Teardown needs names only: the code is neither built nor read for it.
    let package = match cli.command {
        Command::Teardown => deployer::package::Package { zip: Vec::new(), sha256: String::new() },
        _ => deployer::package::load(&stack.authorizer.code, stack.authorizer.architecture, &workspace_of(&cli.stack))?,
    };
    let aws = deployer::aws::Aws::connect(stack.region.as_deref()).await?;
    let desired = engine::Desired::new(&stack, &aws, package);

    match cli.command {
        Command::Diff { detailed_exitcode } => {
            let plan = engine::run(&stack, &aws, &desired, Mode::Diff).await?;
            show(cli, &plan)?;
            Ok(if detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        Command::Apply => {
            let plan = engine::run(&stack, &aws, &desired, Mode::Diff).await?;
            show(cli, &plan)?;
            if plan.has_changes() {
                eprintln!("Applying...");
                engine::run(&stack, &aws, &desired, Mode::Apply).await?;
                // Convergence check: a second reading must find nothing left to do.
                let after = engine::run(&stack, &aws, &desired, Mode::Diff).await?;
                anyhow::ensure!(!after.has_changes(), "AWS still differs from the stack after apply:\n{after}");
                eprintln!("Apply complete.");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Teardown => {
            let plan = engine::teardown(&stack, &aws, &desired, Mode::Diff).await?;
            if !plan.has_changes() && !cli.json {
                println!("Nothing to tear down: no resource of stack {:?} exists.", stack.name);
                return Ok(ExitCode::SUCCESS);
            }
            show(cli, &plan)?;
            if plan.has_changes() {
                engine::teardown(&stack, &aws, &desired, Mode::Apply).await?;
                eprintln!("Teardown complete.");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
fn workspace_of(stack: &std::path::Path) -> PathBuf {
    let dir = stack.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    dir.to_path_buf()
}
