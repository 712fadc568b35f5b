//! Access tokens for the checks, from the team's own token command: every
//! identity provider is reached differently (client credentials over mutual
//! TLS, a CLI, a vault), so `deployer verify` asks a command for each token
//! it needs and never talks to the provider itself.
//!
//! The command runs under `sh -c` with `VERIFY_SCOPE` (the scopes, space
//! separated, possibly empty), and `VERIFY_CERT` / `VERIFY_KEY` (the PEM
//! files of the certificate the token is to be bound to, RFC 8705: the
//! provider binds a token to the certificate of the mutual TLS connection
//! that asked for it). It prints the access token on stdout.
//!
//! A token is never printed: [`Token`] shows as `(token)`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio::sync::Mutex;

/// An access token; its text only goes into an `Authorization` header.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// `request` with this token as its `Authorization: Bearer`.
    pub fn on(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(&self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(token)")
    }
}

/// A certificate and key as files, for the command (and as PEM text, for the client).
#[derive(Debug, Clone)]
pub struct Credential {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Certificate then key, PEM.
    pub pem: Vec<u8>,
}

impl Credential {
    pub fn read(cert_file: PathBuf, key_file: PathBuf) -> anyhow::Result<Credential> {
        let mut pem = std::fs::read(&cert_file).with_context(|| format!("reading {}", cert_file.display()))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(&key_file).with_context(|| format!("reading {}", key_file.display()))?);
        Ok(Credential { cert_file, key_file, pem })
    }
}

pub struct TokenCommand {
    command: String,
    /// Tokens already asked for, by (scopes, certificate file).
    asked: Mutex<HashMap<(String, PathBuf), Token>>,
}

impl TokenCommand {
    pub fn new(command: String) -> TokenCommand {
        TokenCommand { command, asked: Mutex::new(HashMap::new()) }
    }

    /// A token with `scopes`, bound to `to`.
    pub async fn token(&self, scopes: &[String], to: &Credential) -> anyhow::Result<Token> {
        let scope = scopes.join(" ");
        let key = (scope.clone(), to.cert_file.clone());
        let mut asked = self.asked.lock().await;
        if let Some(token) = asked.get(&key) {
            return Ok(token.clone());
        }
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("VERIFY_SCOPE", &scope)
            .env("VERIFY_CERT", &to.cert_file)
            .env("VERIFY_KEY", &to.key_file)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("running the token command")?;
        anyhow::ensure!(
            output.status.success(),
            "the token command failed ({}) for scope {scope:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let text = String::from_utf8(output.stdout).context("the token command printed something that is not text")?;
        let token = text.trim();
        anyhow::ensure!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "the token command printed no token for scope {scope:?} (one line: the access token)"
        );
        let token = Token(token.to_owned());
        asked.insert(key, token.clone());
        Ok(token)
    }
}
