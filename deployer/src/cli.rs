//! The command line: what each command takes, declared once (clap). The
//! binary (`main.rs`) runs it; tests parse the command lines the examples
//! give with it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Converge AWS (IAM, Lambda, API Gateway, ACM, S3, WAF) to stack.yaml")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The stack file.
    #[arg(long, global = true, default_value = "stack.yaml")]
    pub stack: PathBuf,
    /// Print plans and outputs as JSON on stdout (progress goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// How long `apply` and `teardown` wait for another run's lock on the stack.
    #[arg(long, global = true, default_value = "300", value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// How long a lock lasts unless renewed (a crashed run's lock runs out after it).
    #[arg(long, global = true, env = "DEPLOYER_LOCK_LEASE_SECONDS", default_value = "60", hide = true)]
    pub lock_lease: u64,
}

impl Cli {
    /// Parses a command line (`args[0]` is the program), as the binary would.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map_err(|e| e.to_string())
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Show what apply would change; never writes.
    #[command(alias = "plan")]
    Diff {
        /// Exit 0 when AWS matches the stack, 2 when changes are pending, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan here, for `deployer apply PLAN`.
        #[arg(long, value_name = "PLAN")]
        out: Option<PathBuf>,
    },
    /// Print the plan, then carry it out. With PLAN (saved by `plan --out`),
    /// carry out exactly that plan, or nothing if AWS or stack.yaml moved since.
    Apply {
        plan: Option<PathBuf>,
        /// How long to wait for ACM to issue a requested certificate (default:
        /// 2700 with domain.hosted_zone_id, where the deployer writes the
        /// record, 300 otherwise). When it is still waiting then, everything
        /// that does not depend on it is done and apply exits 3; the next
        /// apply finishes.
        #[arg(long, value_name = "SECONDS")]
        wait_for_certificate: Option<u64>,
    },
    /// Delete everything the stack created (and nothing else).
    Teardown,
    /// Show what a person needs next: DNS target, validation records, URLs, ids.
    Output,
    /// Print the least-privilege IAM policy the role that runs the deployer
    /// for this stack needs (a policy document with --json).
    Policy {
        /// The account the policy is for; without it, the caller's (sts:GetCallerIdentity).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Only what `diff` and `plan` need (they never write): for a role
        /// that runs plans, such as on pull requests.
        #[arg(long, conflicts_with = "operator")]
        read_only: bool,
        /// What `deployer bootstrap` needs instead (an operator's, not the pipeline's).
        #[arg(long)]
        operator: bool,
        /// As several documents of at most 6,144 characters each (IAM's limit
        /// for a managed policy), a JSON array with --json: attach each as a
        /// managed policy.
        #[arg(long)]
        split: bool,
    },
    /// Create or update what an operator owns for this stack, with an
    /// operator's credentials: the permissions boundary every role the
    /// stack creates carries. The pipeline's role may only read it; run this
    /// once before the first apply, and again when apply says it is out of date.
    Bootstrap,
    /// Send real requests to the deployed stage through its custom domain (or
    /// to `deployer local`) and report, check by check, whether what the stack
    /// promises holds: mutual TLS, execute-api off, the WAF, the authorizer's
    /// 401 and 403 route by route, certificate binding, forged mapped headers.
    /// A table on stderr (--json: JSON on stdout); exit 0 when no promise is
    /// broken, 4 when one is. Never prints a token or a key.
    Verify {
        /// The stage's URL (default: https://DOMAIN/BASE_PATH from the stack).
        #[arg(long, value_name = "URL")]
        url: Option<url::Url>,
        /// Connect to this address instead of the one DNS gives for the URL's
        /// host (deployer local: 127.0.0.1:8443; a name not in DNS yet).
        #[arg(long, value_name = "ADDR:PORT")]
        connect_to: Option<std::net::SocketAddr>,
        /// Trust this CA (PEM) for the server's certificate too (deployer local's).
        #[arg(long, value_name = "PEM")]
        server_ca: Option<PathBuf>,
        /// A client certificate (PEM) the truststore accepts.
        #[arg(long, env = "VERIFY_CLIENT_CERT", value_name = "PEM")]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long, env = "VERIFY_CLIENT_KEY", value_name = "PEM")]
        key: PathBuf,
        /// Another certificate the truststore accepts, and its key: a token
        /// bound to it is presented with the first (certificate binding).
        #[arg(long, value_name = "PEM", requires = "second_key")]
        second_cert: Option<PathBuf>,
        /// The second certificate's private key (PEM).
        #[arg(long, value_name = "PEM", requires = "second_cert")]
        second_key: Option<PathBuf>,
        /// Prints an access token on stdout; run with `sh -c`, with VERIFY_SCOPE
        /// (space-separated scopes, possibly none) and VERIFY_CERT, VERIFY_KEY
        /// (the certificate the token is to be bound to).
        /// Without it, the checks that need a token are not made.
        #[arg(long, env = "VERIFY_TOKEN_COMMAND", value_name = "COMMAND")]
        token_command: Option<String>,
        /// A path of a GET route whose backend echoes the request's headers:
        /// a client's forged copies of the mapped headers must not arrive.
        #[arg(long, value_name = "PATH")]
        echo_path: Option<String>,
        /// The stage's default endpoint (default: found through AWS).
        #[arg(long, value_name = "URL")]
        execute_api_url: Option<url::Url>,
        /// This runner's address is outside waf.allow: expect the WAF's 403
        /// (and leave the authorizer's checks, which it cannot reach).
        #[arg(long)]
        outside_allowlist: bool,
        /// Also write the report as JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Read the access log from this file (deployer local --access-log)
        /// instead of the stage's log group in CloudWatch.
        #[arg(long, value_name = "FILE")]
        access_log: Option<PathBuf>,
        /// Read the authorizer's log from this file (deployer local
        /// --function-log) instead of its log group in CloudWatch.
        #[arg(long, value_name = "FILE")]
        function_log: Option<PathBuf>,
    },
    /// Print every resource kind the deployer manages, in creation order,
    /// with the kinds each is created after. Reads no stack file.
    Kinds,
    /// Print stack.yaml's JSON Schema (the repository keeps it as
    /// stack.schema.json, for editors). Reads no stack file.
    Schema,
    /// Serve the stack on this machine as API Gateway would (mTLS, WAF
    /// allowlist, routes, the real authorizer and its cache, header mappings,
    /// the backend), without AWS. One JSON access-log line per request on stdout.
    Local {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// Send every route's requests to this origin instead of its backend's
        /// scheme, host and port (the path is kept), e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        backend: Option<url::Url>,
        /// Run this authorizer binary instead of building or unzipping the stack's code.
        #[arg(long, value_name = "PATH")]
        bootstrap: Option<PathBuf>,
        /// Override one of the authorizer's variables (repeatable), e.g. JWKS_URI=http://127.0.0.1:9000/jwks;
        /// checked like the stack file's (names, values, cache safety).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        environment: Vec<String>,
        /// How many execution environments the authorizer may run in at once
        /// (each serves one invocation at a time, as on Lambda).
        #[arg(long, default_value = "1", value_name = "N")]
        concurrency: usize,
        /// The server certificate (PEM); generated for the domain name when not given.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The server certificate's private key (PEM).
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Append each access-log line to this file too (stdout has them all).
        #[arg(long, value_name = "FILE")]
        access_log: Option<PathBuf>,
        /// Append the authorizer's own log here instead of stderr (as Lambda
        /// sends it to CloudWatch).
        #[arg(long, value_name = "FILE")]
        function_log: Option<PathBuf>,
        /// Record accepted DPoP proofs in this DynamoDB table, shared by every
        /// execution environment (and any other authorizer using it), at
        /// AWS_ENDPOINT_URL(_DYNAMODB) or AWS, with the credentials the
        /// deployer runs with. Without it, each environment remembers its own.
        #[arg(long, value_name = "TABLE")]
        dpop_replay_table: Option<String>,
    },
}
