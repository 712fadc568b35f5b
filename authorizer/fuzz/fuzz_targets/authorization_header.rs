//! `Authorization: Bearer|DPoP <token68>`: whatever is accepted is a slice of
//! the header made only of token68 characters.
#![no_main]

use authorizer::request::parse_authorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    if let Ok(credentials) = parse_authorization(header) {
        assert!(header.ends_with(credentials.token));
        let body = credentials.token.trim_end_matches('=');
        assert!(!body.is_empty());
        assert!(body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)), "{header:?}");
    }
});
