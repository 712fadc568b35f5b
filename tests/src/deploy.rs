//! Helpers for running the `deployer` binary against moto: a stack directory
//! with its files, the command itself, and SDK clients that read AWS back
//! (straight from moto, not through the proxy).

use std::path::PathBuf;

use aws_config::BehaviorVersion;

/// A temporary directory holding stack.yaml and the files it names.
pub struct StackDir {
    pub dir: PathBuf,
}

impl StackDir {
    pub fn new(name: &str, yaml: &str) -> StackDir {
        let dir = std::env::temp_dir().join(format!("deployer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("stack dir");
        std::fs::write(dir.join("stack.yaml"), yaml).expect("stack.yaml");
        std::fs::write(dir.join("code.zip"), code_zip(b"\x7fELF not really a binary")).expect("code.zip");
        let ca = crate::certs::Ca::new("Clients CA");
        std::fs::write(dir.join("truststore.pem"), &ca.pem).expect("truststore");
        StackDir { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn write(&self, file: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.dir.join(file), contents).expect("write stack file");
    }
}

impl Drop for StackDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A zip holding `bootstrap` with `contents`.
pub fn code_zip(contents: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(0o755)).expect("entry");
    zip.write_all(contents).expect("write");
    zip.finish().expect("finish");
    buffer.into_inner()
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `deployer ARGS --stack DIR/stack.yaml` with AWS pointed at `endpoint`.
/// Async, so the test's own servers (the proxy) keep running meanwhile.
pub async fn deployer(stack: &StackDir, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = tokio::process::Command::new(crate::workspace_binary("debug", "deployer"));
    command
        .args(args)
        .arg("--stack")
        .arg(stack.path("stack.yaml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("deployer finished within 5 minutes")
        .expect("run deployer");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// SDK clients on moto, for reading back and for changes behind the deployer's back.
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub s3: aws_sdk_s3::Client,
    pub wafv2: aws_sdk_wafv2::Client,
    pub acm: aws_sdk_acm::Client,
}

pub async fn clients() -> Clients {
    clients_in("eu-west-1").await
}

pub async fn clients_in(region: &'static str) -> Clients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(crate::moto::endpoint())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await;
    Clients {
        iam: aws_sdk_iam::Client::new(&config),
        lambda: aws_sdk_lambda::Client::new(&config),
        apigateway: aws_sdk_apigateway::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build()),
        wafv2: aws_sdk_wafv2::Client::new(&config),
        acm: aws_sdk_acm::Client::new(&config),
    }
}

/// A stack file for stack `name` (routes, stage), with `extra` YAML appended.
pub fn stack_yaml(name: &str, extra: &str) -> String {
    format!(
        r#"stack: {name}
region: eu-west-1
authorizer:
  code: {{ zip: code.zip }}
  memory_mb: 256
  timeout_seconds: 5
  environment:
    TOKEN_VALIDATION: introspection
    INTROSPECTION_ENDPOINT: https://idp.example.com/introspect
    INTROSPECTION_CLIENT_ID: gateway
    INTROSPECTION_CLIENT_SECRET: ${{env:INTROSPECTION_SECRET}}
    CERT_BINDING: required
  identity_sources:
    - method.request.header.Authorization
    - context.identity.clientCert.clientCertPem
  cache_ttl_seconds: 300
api:
  name: {name}-api
  realm: pets
  routes:
    - method: GET
      path: /pets/{{id}}
      backend: https://backend.example.com/pets/{{id}}
      context_headers: {{ X-Sub: sub, X-Client-Id: client_id }}
    - method: POST
      path: /pets
      backend: https://backend.example.com/pets
stage:
  name: prod
  variables: {{ tier: gold }}
  throttling: {{ rate_limit: 50, burst_limit: 100 }}
{extra}"#
    )
}

pub const SECRET: &str = "very-secret-introspection-password";

/// The deployer's lock bucket in the tests' account and region.
pub const LOCK_BUCKET: &str = "oauth-gateway-123456789012-eu-west-1";

/// Writes `body` at `key` in the lock bucket (created if needed), as another
/// run of the deployer would. Another test's teardown may remove the empty
/// bucket meanwhile, so it tries a few times.
pub async fn put_in_lock_bucket(aws: &Clients, key: &str, body: &[u8]) {
    for _ in 0..5 {
        let _ = aws
            .s3
            .create_bucket()
            .bucket(LOCK_BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await;
        let put = aws.s3.put_object().bucket(LOCK_BUCKET).key(key).body(body.to_vec().into()).send().await;
        if put.is_ok() {
            return;
        }
    }
    panic!("could not write {key} in the lock bucket");
}
