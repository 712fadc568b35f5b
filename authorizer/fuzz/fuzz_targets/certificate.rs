//! Client certificate handling: the PEM (maybe URL-encoded) API Gateway
//! passes, the thumbprint cache, and the allowlist parser.
#![no_main]

use authorizer::binding::{CertAllowlist, ThumbprintCache, thumbprint_of_pem};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let direct = thumbprint_of_pem(text);
    let cache = ThumbprintCache::default();
    assert_eq!(cache.thumbprint(text), direct);
    assert_eq!(cache.thumbprint(text), direct, "a cached answer is the computed one");
    if let Ok(thumbprint) = direct {
        assert_eq!(thumbprint.0.len(), 43);
    }
    let _ = CertAllowlist::parse(text);
});
