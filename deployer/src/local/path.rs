//! The one form of a request path that everything after it uses: routing,
//! the method ARN, `requestContext.path`, the path parameters and the
//! backend URL. A path seen three ways (raw literals for routing, decoded
//! parameters, dot segments resolved by the backend URL) lets a request be
//! judged as one route and served as another; seen once, it cannot.
//!
//! The raw path is split on `/`, each segment percent-decoded and split again
//! on any `/` it held (`%2F` is a separator, never part of a name), so a
//! request is a list of decoded components. A component `.` or `..`, raw or
//! encoded, is refused: no route of a REST API has one, and a backend would
//! resolve it to a path outside the route.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What is left unencoded in a component of the canonical path: RFC 3986's
/// unreserved characters, and `:` and `@`, which a route's literal may hold
/// (so the method ARN spells `/pets:purge` as the route table does, and the
/// authorizer refuses an ARN that encodes any of these). Never `/`, never
/// `%2E` for a dot.
pub const COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b':').remove(b'@');

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("the path does not start with /")]
    NotAbsolute,
    #[error("the path holds a `.` or `..` segment")]
    DotSegment,
    #[error("the path's percent-encoding is not UTF-8")]
    NotUtf8,
}

/// A request path as decoded components (`/v1/pets/%37` → `v1`, `pets`, `7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    components: Vec<String>,
}

impl RequestPath {
    pub fn parse(raw: &str) -> Result<RequestPath, BadPath> {
        let rest = raw.strip_prefix('/').ok_or(BadPath::NotAbsolute)?;
        if rest.is_empty() {
            return Ok(RequestPath { components: Vec::new() });
        }
        let mut components = Vec::new();
        for segment in rest.split('/') {
            let decoded = percent_decode_str(segment).decode_utf8().map_err(|_| BadPath::NotUtf8)?;
            for component in decoded.split('/') {
                if is_dot_segment(component) {
                    return Err(BadPath::DotSegment);
                }
                components.push(component.to_owned());
            }
        }
        Ok(RequestPath { components })
    }

    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The path without its first components when they are `base_path`'s
    /// (a custom domain's base path mapping), or None.
    pub fn strip_base_path(&self, base_path: &str) -> Option<RequestPath> {
        let base: Vec<&str> = base_path.split('/').filter(|s| !s.is_empty()).collect();
        let matches = self.components.len() >= base.len() && base.iter().zip(&self.components).all(|(b, c)| b == c);
        matches.then(|| RequestPath { components: self.components[base.len()..].to_vec() })
    }

    /// `/` and the components, each percent-encoded the one way.
    pub fn encoded(&self) -> String {
        let mut path = String::with_capacity(self.components.iter().map(|c| c.len() + 1).sum::<usize>().max(1));
        for component in &self.components {
            path.push('/');
            path.extend(utf8_percent_encode(component, COMPONENT));
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }
}

/// `.` or `..`: what a URL resolver removes together with what precedes it.
pub fn is_dot_segment(component: &str) -> bool {
    component == "." || component == ".."
}

/// A parameter value holds a dot segment when any of its `/`-separated
/// parts is one (`..`, `a/../b`).
pub fn holds_dot_segment(value: &str) -> bool {
    value.split('/').any(is_dot_segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(raw: &str) -> Result<Vec<String>, BadPath> {
        RequestPath::parse(raw).map(|p| p.components)
    }

    #[test]
    fn dot_segments_are_refused_raw_or_encoded() {
        for raw in [
            "/pets/..",
            "/pets/.",
            "/pets/%2e%2e",
            "/pets/%2E",
            "/pets/.%2e/x",
            "/pets/..%2Fadmin",
            "/a%2F..%2Fb",
            "/pets/7/../../admin",
        ] {
            assert_eq!(components(raw), Err(BadPath::DotSegment), "{raw}");
        }
        assert_eq!(components("pets"), Err(BadPath::NotAbsolute));
        assert_eq!(components("/pets/%ff"), Err(BadPath::NotUtf8));
        // Dots inside a name are names.
        assert_eq!(components("/a.b/...").expect("valid"), ["a.b", "..."]);
    }

    #[test]
    fn one_encoding_for_one_path() {
        let path = |raw: &str| RequestPath::parse(raw).expect("valid").encoded();
        assert_eq!(path("/pets/%6Dine"), "/pets/mine");
        assert_eq!(path("/pets/%37"), "/pets/7");
        assert_eq!(path("/pets/a%2Fb"), "/pets/a/b", "an encoded slash separates");
        assert_eq!(path("/pets/a b"), "/pets/a%20b");
        assert_eq!(path("/pets/caf%c3%a9"), "/pets/caf%C3%A9");
        assert_eq!(path("/"), "/");
    }

    #[test]
    fn base_paths_map_like_a_custom_domain() {
        let stripped =
            |raw: &str, base: &str| RequestPath::parse(raw).expect("valid").strip_base_path(base).map(|p| p.encoded());
        assert_eq!(stripped("/v1/pets/7", "v1").as_deref(), Some("/pets/7"));
        assert_eq!(stripped("/%76%31/pets", "v1").as_deref(), Some("/pets"));
        assert_eq!(stripped("/v1", "v1").as_deref(), Some("/"));
        assert_eq!(stripped("/v10/pets", "v1"), None);
        assert_eq!(stripped("/pets", "v1"), None);
        assert_eq!(stripped("/pets", "").as_deref(), Some("/pets"));
        assert_eq!(stripped("/v1/beta/pets", "v1/beta").as_deref(), Some("/pets"));
    }
}
