//! Reading a tool's arguments into its argument type, with errors that name
//! the tool, the field and the fix. The type's serde attributes decide what
//! is accepted (and its derived schema shows the same, see [`super::tools`]);
//! `serde_path_to_error` says which field a value failed in, and serde's own
//! description of the failure is turned into the fix.

use std::borrow::Cow;
use std::marker::PhantomData;

use rmcp::ErrorData as McpError;
use rmcp::model::JsonObject;
use rmcp::schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// `arguments` as the tool's argument type `T`.
pub fn parse<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, McpError> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let (field, problem) = explain(tool, &e.path().to_string(), &e.inner().to_string());
        invalid(tool, &field, problem)
    })
}

/// The field and the fix, from serde's message about the value at `path`.
/// Serde words these messages the same way for every type; anything else (a
/// type's own `expecting`) is shown as it is.
fn explain(tool: &str, path: &str, message: &str) -> (String, String) {
    let here = path.to_string();
    if let Some((field, expected)) = quoted_then_expected(message, "unknown field `") {
        let field = if path == "." { field } else { here };
        let accepted = expected.map_or("it takes none".to_string(), |list| format!("it accepts {list}"));
        return (field, format!("is not an argument of `{tool}`; {accepted}"));
    }
    if let Some((field, _)) = quoted_then_expected(message, "missing field `") {
        let field = if path == "." { field } else { format!("{path}.{field}") };
        return (field, "is required".into());
    }
    if let Some((value, expected)) = quoted_then_expected(message, "unknown variant `") {
        return (here, format!("is {value:?}; use one of {}", expected.unwrap_or_default()));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some((found, expected)) =
            message.strip_prefix(prefix).and_then(|r| r.split_once(", expected "))
        {
            return (here, format!("must be {expected}, not {found}"));
        }
    }
    (here, message.to_string())
}

/// From "<prefix>name`, expected `a`, `b` or `c`": the name and "a, b, c".
fn quoted_then_expected(message: &str, prefix: &str) -> Option<(String, Option<String>)> {
    let (name, rest) = message.strip_prefix(prefix)?.split_once('`').unwrap_or((message, ""));
    let expected = rest.strip_prefix(", expected ").map(|list| {
        let list = list.strip_prefix("one of ").unwrap_or(list);
        list.replace("` or `", "`, `").replace('`', "")
    });
    Some((name.to_string(), expected))
}

pub fn invalid(tool: &str, field: &str, problem: String) -> McpError {
    McpError::invalid_params(
        format!("`{tool}`: `{field}` {problem}"),
        Some(json!({ "tool": tool, "field": field })),
    )
}

/// The value of the first of several names for one field (`cwd` /
/// `workingDirectory`); giving more than one is refused.
pub fn one_of<T>(tool: &str, names: &[(&str, Option<T>)]) -> Result<Option<T>, McpError>
where
    T: Clone,
{
    let mut given = names.iter().filter(|(_, value)| value.is_some());
    let Some((_, first)) = given.next() else { return Ok(None) };
    if let Some((second, _)) = given.next() {
        let all: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
        return Err(invalid(tool, second, format!("duplicates {}; give only one", all.join(" / "))));
    }
    Ok(first.clone())
}

/// A fixed list of words a string argument may take.
pub trait Words {
    /// The schema's name for the list.
    const NAME: &'static str;
    const ALL: &'static [&'static str];
}

/// A string that must be one of `W::ALL`; its schema is a string `enum`.
pub struct OneOf<W>(String, PhantomData<W>);

impl<W> OneOf<W> {
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<W> std::fmt::Debug for OneOf<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, W: Words> Deserialize<'de> for OneOf<W> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        if W::ALL.contains(&word.as_str()) {
            Ok(OneOf(word, PhantomData))
        } else {
            Err(D::Error::unknown_variant(&word, W::ALL))
        }
    }
}

impl<W: Words> JsonSchema for OneOf<W> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        W::NAME.into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": W::ALL })
    }
}

/// One configuration override's value, written as TOML for `-c key=value`.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "must be a string, number, boolean, or a list of those")]
#[schemars(crate = "rmcp::schemars", inline)]
pub enum ConfigValue {
    One(Scalar),
    List(Vec<Scalar>),
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(crate = "rmcp::schemars", inline)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl ConfigValue {
    pub fn text(text: &str) -> Self {
        ConfigValue::One(Scalar::Text(text.to_string()))
    }

    /// The value as a TOML literal.
    pub fn to_toml(&self) -> String {
        match self {
            ConfigValue::One(scalar) => scalar.to_toml(),
            ConfigValue::List(items) => {
                format!("[{}]", items.iter().map(Scalar::to_toml).collect::<Vec<_>>().join(", "))
            }
        }
    }
}

impl Scalar {
    fn to_toml(&self) -> String {
        match self {
            // JSON string escaping is valid TOML basic-string escaping.
            Scalar::Text(text) => serde_json::to_string(text).expect("strings serialise"),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Sizes;
    impl Words for Sizes {
        const NAME: &'static str = "Size";
        const ALL: &'static [&'static str] = &["small", "large"];
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Example {
        prompt: String,
        size: Option<OneOf<Sizes>>,
        #[serde(default)]
        reset_session: bool,
        config: Option<BTreeMap<String, ConfigValue>>,
    }

    fn error(value: Value) -> String {
        let Value::Object(object) = value else { panic!("an object") };
        parse::<Example>("codex", Some(object)).unwrap_err().message.into_owned()
    }

    #[test]
    fn errors_name_the_tool_the_field_and_the_fix() {
        assert_eq!(
            error(json!({"promt": "x"})),
            "`codex`: `promt` is not an argument of `codex`; it accepts prompt, size, resetSession, config"
        );
        assert_eq!(error(json!({"prompt": 3})), "`codex`: `prompt` must be a string, not integer `3`");
        assert_eq!(
            error(json!({"prompt": "x", "size": "huge"})),
            "`codex`: `size` is \"huge\"; use one of small, large"
        );
        assert_eq!(
            error(json!({"prompt": "x", "resetSession": "yes"})),
            "`codex`: `resetSession` must be a boolean, not string \"yes\""
        );
        assert_eq!(error(json!({})), "`codex`: `prompt` is required");
        assert_eq!(
            error(json!({"prompt": "x", "nope": 1})),
            "`codex`: `nope` is not an argument of `codex`; it accepts prompt, size, resetSession, config"
        );
        assert_eq!(
            error(json!({"prompt": "x", "config": {"nested": {"x": 1}}})),
            "`codex`: `config.nested` must be a string, number, boolean, or a list of those"
        );
        assert_eq!(
            error(json!({"prompt": "x", "config": {"list": [[1]]}})),
            "`codex`: `config.list` must be a string, number, boolean, or a list of those"
        );
    }

    #[test]
    fn an_error_carries_the_tool_and_field_as_data() {
        let Value::Object(object) = json!({"prompt": "x", "size": 1}) else { unreachable!() };
        let err = parse::<Example>("codex", Some(object)).unwrap_err();
        assert_eq!(err.data, Some(json!({"tool": "codex", "field": "size"})));
    }

    #[test]
    fn absent_and_null_optional_fields_are_the_same() {
        let Value::Object(object) = json!({"prompt": "x", "size": null, "config": null}) else {
            unreachable!()
        };
        let parsed: Example = parse("codex", Some(object)).unwrap();
        assert!(parsed.size.is_none() && parsed.config.is_none() && !parsed.reset_session);
        assert!(parse::<Example>("codex", None).is_err(), "no arguments: `prompt` is missing");
    }

    #[test]
    fn config_becomes_toml() {
        let Value::Object(object) =
            json!({"prompt": "x", "config": {"a": "x\"y", "b": 2, "c": true, "d": ["p", 1], "e": 1.5}})
        else {
            unreachable!()
        };
        let parsed: Example = parse("codex", Some(object)).unwrap();
        let pairs: Vec<(String, String)> =
            parsed.config.unwrap().into_iter().map(|(k, v)| (k, v.to_toml())).collect();
        let expected = [("a", "\"x\\\"y\""), ("b", "2"), ("c", "true"), ("d", "[\"p\", 1]"), ("e", "1.5")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn one_of_refuses_two_names_for_one_field() {
        assert_eq!(
            one_of::<&str>("codex", &[("cwd", None), ("workingDirectory", Some("/w"))]).unwrap(),
            Some("/w")
        );
        let err = one_of("codex", &[("cwd", Some("/a")), ("workingDirectory", Some("/b"))]).unwrap_err();
        assert!(err.message.contains("`workingDirectory` duplicates cwd / workingDirectory; give only one"));
    }
}
