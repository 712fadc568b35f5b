//! Route matching as API Gateway does it for a REST API: the request's verb
//! and path against each route's method and resource template (`{param}` is
//! one segment, a trailing `{param+}` the rest of the path). Where several
//! apply, the most specific from the left wins, as API Gateway's walk of its
//! resource tree does ([`specificity`]).
//!
//! Matching is on the path's decoded components ([`super::path`]), so a
//! literal cannot be dodged by encoding it (`/pets/%6Dine` is `/pets/mine`),
//! and the parameters captured are those same components.

use std::collections::BTreeMap;

use super::path::RequestPath;
use crate::stack::RouteSpec;
use crate::stack::template::Part;

#[derive(Debug)]
pub struct Route {
    pub spec: RouteSpec,
}

/// A matched route and the path parameters it captured.
#[derive(Debug)]
pub struct Matched<'a> {
    pub route: &'a Route,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new(specs: &[RouteSpec]) -> Routes {
        Routes(specs.iter().map(|spec| Route { spec: spec.clone() }).collect())
    }

    /// The most specific route for `method` and the path's decoded
    /// components (without the base path), if any. `ANY` routes match every
    /// verb, after exact ones.
    pub fn find(&self, method: &str, path: &RequestPath) -> Option<Matched<'_>> {
        let segments: Vec<&str> = path.components().iter().map(String::as_str).collect();
        self.0
            .iter()
            .filter(|route| route.spec.method == method || route.spec.method == "ANY")
            .filter_map(|route| Some((route, capture(route.spec.template.parts(), &segments)?)))
            .max_by_key(|(route, _)| (specificity(route.spec.template.parts()), route.spec.method != "ANY"))
            .map(|(route, parameters)| Matched { route, parameters })
    }
}

fn capture(parts: &[Part], segments: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut parameters = BTreeMap::new();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Greedy(name) => {
                let rest = segments.get(i..).filter(|rest| !rest.is_empty())?;
                parameters.insert(name.clone(), rest.join("/"));
                return Some(parameters);
            }
            Part::Literal(literal) if segments.get(i) == Some(&literal.as_str()) => {}
            Part::Param(name) if segments.get(i).is_some_and(|s| !s.is_empty()) => {
                parameters.insert(name.clone(), segments[i].to_owned());
            }
            _ => return None,
        }
    }
    (parts.len() == segments.len()).then_some(parameters)
}

/// API Gateway walks its resource tree from the root, and at each level a
/// literal child wins over `{param}`, which wins over `{param+}`: so routes
/// compare segment by segment from the left, the first difference deciding
/// (`/x/{c}` over `/{a}/b` for `/x/b`), not by how many literals each has.
fn specificity(parts: &[Part]) -> Vec<u8> {
    parts
        .iter()
        .map(|part| match part {
            Part::Literal(_) => 2,
            Part::Param(_) => 1,
            Part::Greedy(_) => 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(specs: &[(&str, &str)]) -> Routes {
        Routes::new(
            &specs
                .iter()
                .map(|(method, path)| RouteSpec {
                    method: (*method).into(),
                    path: (*path).into(),
                    template: crate::stack::template::RouteTemplate::parse(path).expect("a valid template"),
                    backend: "http://b".into(),
                    context_headers: BTreeMap::new(),
                    any_valid_token: false,
                    scopes: Vec::new(),
                })
                .collect::<Vec<_>>(),
        )
    }

    fn found(routes: &Routes, method: &str, path: &str) -> Option<(String, Vec<(String, String)>)> {
        let path = RequestPath::parse(path).expect("a valid path");
        routes.find(method, &path).map(|m| (m.route.spec.path.clone(), m.parameters.into_iter().collect()))
    }

    #[test]
    fn templates_match_like_api_gateway_resources() {
        let table =
            routes(&[("GET", "/pets/{id}"), ("GET", "/pets/mine"), ("POST", "/pets"), ("ANY", "/files/{path+}")]);
        let one = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(found(&table, "GET", "/pets/7"), Some(("/pets/{id}".into(), one("id", "7"))));
        assert_eq!(found(&table, "GET", "/pets/mine"), Some(("/pets/mine".into(), vec![])), "literal wins");
        assert_eq!(found(&table, "GET", "/pets/a%20b"), Some(("/pets/{id}".into(), one("id", "a b"))));
        assert_eq!(found(&table, "GET", "/pets/%6Dine"), Some(("/pets/mine".into(), vec![])), "decoded literal");
        assert_eq!(found(&table, "GET", "/pets/a%2Fb"), None, "an encoded slash is a separator");
        assert_eq!(found(&table, "GET", "/files/a%2Fb"), Some(("/files/{path+}".into(), one("path", "a/b"))));
        assert_eq!(found(&table, "DELETE", "/files/a/b"), Some(("/files/{path+}".into(), one("path", "a/b"))));
        for (method, path) in
            [("GET", "/pets"), ("DELETE", "/pets/7"), ("GET", "/pets/7/x"), ("GET", "/files"), ("GET", "/")]
        {
            assert_eq!(found(&table, method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn the_leftmost_literal_decides_between_routes_that_both_apply() {
        // Either order in the stack: the first segment where they differ decides.
        for specs in [[("GET", "/{a}/b"), ("GET", "/x/{c}")], [("GET", "/x/{c}"), ("GET", "/{a}/b")]] {
            let table = routes(&specs);
            assert_eq!(found(&table, "GET", "/x/b").map(|(t, _)| t), Some("/x/{c}".into()), "{specs:?}");
            assert_eq!(found(&table, "GET", "/y/b").map(|(t, _)| t), Some("/{a}/b".into()), "{specs:?}");
        }
        for specs in [[("GET", "/files/{p+}"), ("GET", "/{a}/{b}")], [("GET", "/{a}/{b}"), ("GET", "/files/{p+}")]] {
            let table = routes(&specs);
            assert_eq!(found(&table, "GET", "/files/x").map(|(t, _)| t), Some("/files/{p+}".into()), "{specs:?}");
        }
        let table = routes(&[("ANY", "/pets/{id}"), ("GET", "/pets/{id}")]);
        let path = RequestPath::parse("/pets/7").expect("a valid path");
        let method = table.find("GET", &path).map(|m| m.route.spec.method.clone());
        assert_eq!(method.as_deref(), Some("GET"), "the exact verb over ANY on one resource");
    }
}
