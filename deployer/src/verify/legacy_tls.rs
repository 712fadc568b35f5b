//! Whether a server completes a handshake in TLS 1.1, which API Gateway's
//! security policies for custom domains (`TLS_1_2` and newer) refuse.
//!
//! No TLS library of the workspace speaks TLS 1.1 (rustls starts at 1.2), and
//! deciding it takes one message: this sends a ClientHello that offers only
//! TLS 1.1 and reads the first record of the answer. A ServerHello means the
//! server took it; an alert or a closed connection, that it refused. Nothing
//! past the ServerHello is ever sent, so no TLS 1.1 session is made.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HANDSHAKE: u8 = 0x16;
const ALERT: u8 = 0x15;
const CLIENT_HELLO: u8 = 0x01;
const SERVER_HELLO: u8 = 0x02;
const TLS_1_0: [u8; 2] = [0x03, 0x01];
const TLS_1_1: [u8; 2] = [0x03, 0x02];

/// How long the server may take to answer the hello.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server did with a TLS 1.1 ClientHello.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// A ServerHello for this version (`0x0302`: TLS 1.1).
    Accepted(u16),
    /// An alert (its description code: 70 is `protocol_version`), or the
    /// connection closed.
    Refused(String),
}

/// Cipher suites TLS 1.1 servers take: ECDHE and RSA key exchange, AES-CBC.
const SUITES: [u16; 6] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035];

fn with_length(length_bytes: usize, body: &[u8]) -> Vec<u8> {
    let length = body.len().to_be_bytes();
    let mut out = length[length.len() - length_bytes..].to_vec();
    out.extend_from_slice(body);
    out
}

fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(with_length(2, body));
    out
}

/// A TLS record holding a ClientHello that offers only TLS 1.1, for `server_name` (SNI).
pub fn client_hello(server_name: &str) -> Vec<u8> {
    let mut hello = TLS_1_1.to_vec();
    hello.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    hello.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    hello.push(0); // no session id
    let suites: Vec<u8> = SUITES.iter().flat_map(|s| s.to_be_bytes()).collect();
    hello.extend(with_length(2, &suites));
    hello.extend([1, 0]); // compression: null only
    let mut name = vec![0]; // host_name
    name.extend(with_length(2, server_name.as_bytes()));
    let mut extensions = extension(0x0000, &with_length(2, &name));
    // Supported groups (x25519, P-256, P-384) and point formats, for ECDHE.
    extensions.extend(extension(0x000a, &with_length(2, &[0x00, 0x1d, 0x00, 0x17, 0x00, 0x18])));
    extensions.extend(extension(0x000b, &with_length(1, &[0])));
    hello.extend(with_length(2, &extensions));
    let mut handshake = vec![CLIENT_HELLO];
    handshake.extend(with_length(3, &hello));
    let mut record = vec![HANDSHAKE];
    record.extend_from_slice(&TLS_1_0); // the record layer of a first hello, as clients send it
    record.extend(with_length(2, &handshake));
    record
}

/// Offers TLS 1.1 to `address` for `server_name`, and reads what comes back.
pub async fn offer_tls_1_1(address: &str, server_name: &str) -> anyhow::Result<Answer> {
    let mut stream = tokio::time::timeout(ANSWER_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .with_context(|| format!("connecting to {address}: no answer"))?
        .with_context(|| format!("connecting to {address}"))?;
    stream.write_all(&client_hello(server_name)).await.context("sending the hello")?;
    let mut head = [0u8; 9];
    let read = tokio::time::timeout(ANSWER_TIMEOUT, read_up_to(&mut stream, &mut head))
        .await
        .context("the server did not answer the hello")??;
    Ok(match (read, head[0]) {
        (0, _) => Answer::Refused("the connection was closed".into()),
        (n, ALERT) if n >= 7 => Answer::Refused(match head[6] {
            70 => "alert 70 (protocol_version)".to_owned(),
            40 => "alert 40 (handshake_failure)".to_owned(),
            other => format!("alert {other}"),
        }),
        (9, HANDSHAKE) if head[5] == SERVER_HELLO => {
            // record header (5), handshake type (1), length (3), then the version.
            let mut version = [0u8; 2];
            match tokio::time::timeout(ANSWER_TIMEOUT, stream.read_exact(&mut version)).await {
                Ok(Ok(_)) => Answer::Accepted(u16::from_be_bytes(version)),
                _ => Answer::Refused("a ServerHello cut short".into()),
            }
        }
        (n, kind) => Answer::Refused(format!("{n} bytes of record type {kind}")),
    })
}

/// Reads until `buffer` is full or the stream ends; how many bytes came.
async fn read_up_to(stream: &mut tokio::net::TcpStream, buffer: &mut [u8]) -> anyhow::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            // A reset is a refusal too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 that reads a hello and answers `bytes`.
    async fn answering(bytes: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a client");
            let mut hello = [0u8; 5];
            stream.read_exact(&mut hello).await.expect("a record header");
            stream.write_all(&bytes).await.expect("the answer");
        });
        address
    }

    #[test]
    fn the_hello_offers_tls_1_1_and_names_the_server() {
        let hello = client_hello("api.example.com");
        assert_eq!((hello[0], &hello[1..3]), (HANDSHAKE, &TLS_1_0[..]));
        assert_eq!(usize::from(u16::from_be_bytes([hello[3], hello[4]])), hello.len() - 5, "record length");
        assert_eq!(hello[5], CLIENT_HELLO);
        assert_eq!(&hello[9..11], &TLS_1_1, "client_version");
        assert!(hello.windows(15).any(|w| w == b"api.example.com"), "SNI");
    }

    #[tokio::test]
    async fn a_server_hello_is_acceptance_and_an_alert_or_a_close_is_refusal() {
        let server_hello = vec![HANDSHAKE, 0x03, 0x02, 0x00, 0x2a, SERVER_HELLO, 0x00, 0x00, 0x26, 0x03, 0x02];
        let accepted = offer_tls_1_1(&answering(server_hello).await, "a.test").await.expect("an answer");
        assert_eq!(accepted, Answer::Accepted(0x0302));
        let alert = vec![ALERT, 0x03, 0x01, 0x00, 0x02, 0x02, 70];
        let refused = offer_tls_1_1(&answering(alert).await, "a.test").await.expect("an answer");
        assert_eq!(refused, Answer::Refused("alert 70 (protocol_version)".into()));
        let closed = offer_tls_1_1(&answering(Vec::new()).await, "a.test").await.expect("an answer");
        assert_eq!(closed, Answer::Refused("the connection was closed".into()));
    }
}
