//! A route's resource template (`/pets/{id}`, `/files/{path+}`), parsed once
//! when the stack is checked: the checks, the API's path resources and
//! methods, and `deployer local`'s routing all read these parts, never the
//! text again.

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path (last segment only).
    Greedy(String),
}

impl Part {
    /// The segment as written.
    pub fn text(&self) -> String {
        match self {
            Part::Literal(literal) => literal.clone(),
            Part::Param(name) => format!("{{{name}}}"),
            Part::Greedy(name) => format!("{{{name}+}}"),
        }
    }
}

/// A parsed template; `/` has no parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteTemplate {
    parts: Vec<Part>,
}

impl RouteTemplate {
    /// Parses `text` by API Gateway's rules for resource paths: starts with
    /// `/`, no empty segment, literals of `A-Za-z0-9-._~:@`, parameters of
    /// `A-Za-z0-9_`, a greedy `{name+}` only last.
    pub fn parse(text: &str) -> Result<RouteTemplate, String> {
        if text == "/" {
            return Ok(RouteTemplate::default());
        }
        if !text.starts_with('/') || text.ends_with('/') || text.contains("//") {
            return Err(format!("{text:?} must start with '/', not end with '/', and have no empty segment"));
        }
        let segments: Vec<&str> = text[1..].split('/').collect();
        let mut parts = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let name_ok = |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let part = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(inner) => match inner.strip_suffix('+') {
                    Some(name) if name_ok(name) && i + 1 == segments.len() => Some(Part::Greedy(name.to_owned())),
                    Some(_) => None,
                    None if name_ok(inner) => Some(Part::Param(inner.to_owned())),
                    None => None,
                },
                None if segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:@".contains(&b)) => {
                    Some(Part::Literal((*segment).to_owned()))
                }
                None => None,
            };
            let Some(part) = part else {
                return Err(format!("segment {segment:?} of {text:?} is not a valid resource path part"));
            };
            parts.push(part);
        }
        Ok(RouteTemplate { parts })
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The names of its path parameters, greedy included (`id`, `path`).
    pub fn parameters(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Param(name) | Part::Greedy(name) => Some(name.clone()),
                Part::Literal(_) => None,
            })
            .collect()
    }

    /// A request path this template applies to: each `{param}` spelled
    /// `param`, a greedy `{rest+}` spelled `rest` (`/pets/7`, `/files/a/b`).
    pub fn sample(&self, param: &str, rest: &str) -> String {
        let parts: Vec<&str> = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Literal(literal) => literal.as_str(),
                Part::Param(_) => param,
                Part::Greedy(_) => rest,
            })
            .collect();
        format!("/{}", parts.join("/"))
    }

    /// The path resources it hangs on, from the top: `/pets`, `/pets/{id}`.
    pub fn resource_paths(&self) -> Vec<String> {
        let mut paths = Vec::with_capacity(self.parts.len());
        let mut path = String::new();
        for part in &self.parts {
            path = format!("{path}/{}", part.text());
            paths.push(path.clone());
        }
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_parsed_once_into_parts() {
        let template = RouteTemplate::parse("/pets/{id}/files/{path+}").expect("valid");
        assert_eq!(template.parameters(), ["id", "path"]);
        assert_eq!(template.resource_paths(), ["/pets", "/pets/{id}", "/pets/{id}/files", "/pets/{id}/files/{path+}"]);
        assert_eq!(RouteTemplate::parse("/").expect("the root").parts(), []);
        for bad in ["pets", "/pets/", "//pets", "/pets/{}", "/pets/{a-b}", "/{path+}/x", "/pets/a b", "/{+}"] {
            assert!(RouteTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
