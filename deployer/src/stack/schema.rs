//! stack.yaml's JSON Schema, generated from the parser's own types
//! ([`super::raw::RawStack`]): editors (yaml-language-server) complete and
//! check the file with it. `stack.schema.json` at the repository root is
//! this output (`deployer schema`), kept current by a test. The schema says
//! what shape the file has; what only the checks know (CIDR host bits, a
//! truststore's certificates, the authorizer's settings) is still checked
//! by `deployer` itself.

use super::raw::RawStack;

/// The schema, as `deployer schema` prints it.
pub fn json_schema() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(RawStack)).unwrap_or_default();
    schema["title"] = "stack.yaml of the OAuth 2.0 / mTLS gateway deployer".into();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;

    fn root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    fn validator() -> (boon::Schemas, boon::SchemaIndex) {
        let schema: Value = serde_json::from_str(&json_schema()).expect("the schema is JSON");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler.add_resource("stack.schema.json", schema).expect("a resource");
        let index = compiler.compile("stack.schema.json", &mut schemas).expect("a valid JSON Schema");
        (schemas, index)
    }

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("YAML")
    }

    #[test]
    fn the_schema_in_the_repository_is_current() {
        let kept = std::fs::read_to_string(root().join("stack.schema.json")).unwrap_or_default();
        assert!(
            kept == json_schema(),
            "stack.schema.json is not what the parser's types give: run `cargo run -p deployer -- schema > \
             stack.schema.json`"
        );
    }

    #[test]
    fn the_example_validates_and_a_broken_one_does_not() {
        let (schemas, index) = validator();
        let example = std::fs::read_to_string(root().join("stack.yaml")).expect("stack.yaml");
        assert!(example.starts_with("# yaml-language-server: $schema=stack.schema.json"), "the editor modeline");
        let example = yaml(&example);
        if let Err(e) = schemas.validate(&example, index) {
            panic!("stack.yaml does not validate: {e:#}");
        }
        let mut broken = example.clone();
        broken["api"]["routes"][0]["scope"] = "pets:read".into();
        assert!(schemas.validate(&broken, index).is_err(), "a misspelt field (`scope`) is refused");
        let mut broken = example.clone();
        broken["authorizer"]["code"] = serde_json::json!({"build": "authorizer", "zip": "x.zip"});
        assert!(schemas.validate(&broken, index).is_err(), "code is one of build or zip");
        let mut broken = example;
        broken["api"]["default"] = "allow".into();
        assert!(schemas.validate(&broken, index).is_err(), "default is `deny` or scopes");
    }
}
