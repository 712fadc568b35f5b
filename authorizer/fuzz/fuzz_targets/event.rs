//! The API Gateway event parser, with everything read from an event after it:
//! no input panics, and no Debug output ever shows the credentials.
#![no_main]

use authorizer::AuthorizerEvent;
use authorizer::arn::MethodArn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<AuthorizerEvent>(data) else {
        return;
    };
    let shown = format!("{event:?}");
    // What the Debug output may show: everything but the credentials. A
    // secret may appear in it only through these (a client can put a token
    // in its request path, and so in the method ARN, itself).
    let visible =
        format!("{:?} {:?} {:?} {:?}", event.kind, event.method_arn(), event.http_method(), event.request_context);
    if let Ok(credentials) = event.credentials() {
        // A token of 12+ characters never appears in the event's Debug output
        // through the credential fields.
        let token = credentials.token;
        assert!(token.len() < 12 || !shown.contains(token) || visible.contains(token), "{shown}");
    }
    let _ = event.dpop_proof();
    let _ = event.http_method();
    let _ = event.request_url();
    if let Some(cert) = event.client_cert() {
        // The PEM is never shown, not even inside the request context.
        assert!(
            cert.pem.len() < 12
                || !shown.contains(&cert.pem)
                || format!("{:?}", event.method_arn()).contains(&cert.pem)
        );
    }
    if let Some(raw) = event.method_arn()
        && let Ok(arn) = MethodArn::parse(raw)
    {
        assert!(!arn.raw.contains(['*', '?']));
    }
});
