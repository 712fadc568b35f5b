//! The REST APIs created through the layer, as API Gateway keeps them: the
//! resource tree with its methods, the authorizers by name, the deployments
//! (each a snapshot of the methods when it was made) and the deployment each
//! stage serves.
//!
//! moto keeps a tree too, but not API Gateway's rules on it: it creates a
//! second resource of a path part that exists, and a variable path part
//! beside another (`/pets/{id}` and `/pets/{petId}`), overwrites a method on
//! PutMethod, and lets two authorizers share a name. And a moto stage serves
//! whatever the API holds now, where AWS serves the deployment's copy: a
//! method deleted after the deployment was made still answers. This model
//! gives the refusals AWS gives, and tells tests what a stage really serves.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::Call;

/// Every REST API seen created, by id.
#[derive(Default)]
pub(super) struct RestApis {
    apis: HashMap<String, Api>,
}

#[derive(Default)]
struct Api {
    /// Resource id → resource.
    resources: HashMap<String, Resource>,
    /// Authorizer name → id.
    authorizers: HashMap<String, String>,
    /// Deployment id → the routes (`GET /pets/{id}`) it serves.
    deployments: HashMap<String, BTreeSet<String>>,
    /// Stage name → deployment id.
    stages: HashMap<String, String>,
}

struct Resource {
    parent: Option<String>,
    part: String,
    path: String,
    methods: BTreeSet<String>,
}

/// A refusal as API Gateway words it: status, code, message.
pub(super) type Refusal = (u16, &'static str, String);

fn is_variable(part: &str) -> bool {
    part.starts_with('{') && part.ends_with('}')
}

impl Api {
    fn routes(&self) -> BTreeSet<String> {
        self.resources.values().flat_map(|r| r.methods.iter().map(move |m| format!("{m} {}", r.path))).collect()
    }

    fn remove_resource(&mut self, id: &str) {
        let Some(removed) = self.resources.remove(id) else { return };
        // Deleting a resource deletes everything under it.
        let below = format!("{}/", removed.path.trim_end_matches('/'));
        self.resources.retain(|_, r| !r.path.starts_with(&below));
    }
}

impl RestApis {
    /// The REST API id a call writes to (anything but a read under
    /// `/restapis/{id}`), for the one-write-at-a-time rule.
    pub(super) fn written_by(call: &Call<'_>) -> Option<String> {
        if call.service != "apigateway" || matches!(call.operation.as_str(), "GET" | "HEAD") {
            return None;
        }
        let mut segments = call.path.trim_start_matches('/').split('/');
        match (segments.next(), segments.next()) {
            (Some("restapis"), Some(id)) if !id.is_empty() => Some(id.to_owned()),
            _ => None,
        }
    }

    /// The refusal API Gateway gives this call, if it breaks one of its
    /// rules. Calls on APIs not created through the layer pass.
    pub(super) fn refusal(&self, call: &Call<'_>) -> Option<Refusal> {
        if call.service != "apigateway" {
            return None;
        }
        if let Some(c) = call.rest("POST", &["restapis", "*", "resources", "*"]) {
            let api = self.apis.get(c[0])?;
            let part = call.body["pathPart"].as_str().unwrap_or_default();
            let siblings = api.resources.values().filter(|r| r.parent.as_deref() == Some(c[1]));
            for sibling in siblings {
                if sibling.part == part {
                    return Some((
                        409,
                        "ConflictException",
                        format!("Another resource with the same parent already has this name: {part}"),
                    ));
                }
                if is_variable(part) && is_variable(&sibling.part) {
                    return Some((
                        400,
                        "BadRequestException",
                        format!(
                            "A sibling ({}) of this resource already has a variable path part -- only one is allowed",
                            sibling.part.trim_start_matches('{').trim_end_matches('}')
                        ),
                    ));
                }
            }
        }
        if let Some(c) = call.rest("PUT", &["restapis", "*", "resources", "*", "methods", "*"]) {
            let resource = self.apis.get(c[0])?.resources.get(c[1])?;
            if resource.methods.contains(c[2]) {
                return Some((409, "ConflictException", "Method already exists for this resource".into()));
            }
        }
        if let Some(c) = call.rest("POST", &["restapis", "*", "authorizers"]) {
            let name = call.body["name"].as_str().unwrap_or_default();
            if self.apis.get(c[0])?.authorizers.contains_key(name) {
                return Some((
                    409,
                    "ConflictException",
                    format!("Authorizer name must be unique. Authorizer {name} already exists in this RestApi."),
                ));
            }
        }
        None
    }

    /// Records what a call API Gateway accepted changed.
    pub(super) fn record(&mut self, call: &Call<'_>, answer: &Value) {
        if call.service != "apigateway" {
            return;
        }
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        if call.rest("POST", &["restapis"]).is_some() {
            let mut api = Api::default();
            let root = text(&answer["rootResourceId"]);
            api.resources.insert(
                root,
                Resource { parent: None, part: String::new(), path: "/".into(), methods: BTreeSet::new() },
            );
            self.apis.insert(text(&answer["id"]), api);
            return;
        }
        if let Some(c) = call.rest("DELETE", &["restapis", "*"]) {
            self.apis.remove(c[0]);
            return;
        }
        let Some(api_id) = call.path.trim_start_matches('/').split('/').nth(1) else { return };
        let Some(api) = self.apis.get_mut(api_id) else { return };
        if let Some(c) = call.rest("POST", &["restapis", "*", "resources", "*"]) {
            let resource = Resource {
                parent: Some(c[1].to_owned()),
                part: text(&call.body["pathPart"]),
                path: text(&answer["path"]),
                methods: BTreeSet::new(),
            };
            api.resources.insert(text(&answer["id"]), resource);
        } else if let Some(c) = call.rest("DELETE", &["restapis", "*", "resources", "*"]) {
            api.remove_resource(c[1]);
        } else if let Some(c) = call.rest("PUT", &["restapis", "*", "resources", "*", "methods", "*"]) {
            if let Some(resource) = api.resources.get_mut(c[1]) {
                resource.methods.insert(c[2].to_owned());
            }
        } else if let Some(c) = call.rest("DELETE", &["restapis", "*", "resources", "*", "methods", "*"]) {
            if let Some(resource) = api.resources.get_mut(c[1]) {
                resource.methods.remove(c[2]);
            }
        } else if call.rest("POST", &["restapis", "*", "authorizers"]).is_some() {
            api.authorizers.insert(text(&call.body["name"]), text(&answer["id"]));
        } else if let Some(c) = call.rest("DELETE", &["restapis", "*", "authorizers", "*"]) {
            api.authorizers.retain(|_, id| id != c[1]);
        } else if call.rest("POST", &["restapis", "*", "deployments"]).is_some() {
            let id = text(&answer["id"]);
            api.deployments.insert(id.clone(), api.routes());
            if let Some(stage) = call.body["stageName"].as_str() {
                api.stages.insert(stage.to_owned(), id);
            }
        } else if call.rest("POST", &["restapis", "*", "stages"]).is_some() {
            api.stages.insert(text(&call.body["stageName"]), text(&call.body["deploymentId"]));
        } else if let Some(c) = call.rest("PATCH", &["restapis", "*", "stages", "*"]) {
            let patches = call.body["patchOperations"].as_array().cloned().unwrap_or_default();
            for patch in patches.iter().filter(|p| p["path"] == "/deploymentId") {
                api.stages.insert(c[1].to_owned(), text(&patch["value"]));
            }
        } else if let Some(c) = call.rest("DELETE", &["restapis", "*", "stages", "*"]) {
            api.stages.remove(c[1]);
        }
    }

    /// The routes a stage serves: its deployment's, whatever the API holds now.
    pub(super) fn served(&self, api_id: &str, stage: &str) -> Option<BTreeSet<String>> {
        let api = self.apis.get(api_id)?;
        api.deployments.get(api.stages.get(stage)?).cloned()
    }

    /// The paths of an API's resources, root included.
    pub(super) fn paths(&self, api_id: &str) -> Option<BTreeSet<String>> {
        Some(self.apis.get(api_id)?.resources.values().map(|r| r.path.clone()).collect())
    }
}
