//! Reading tool arguments with errors that name the field and the fix.

use rmcp::ErrorData as McpError;
use rmcp::model::JsonObject;
use serde_json::{Value, json};

/// A tool's arguments, checked field by field.
pub struct Args<'a> {
    tool: &'a str,
    object: JsonObject,
}

impl<'a> Args<'a> {
    /// Refuses fields the tool does not define.
    pub fn new(tool: &'a str, object: Option<JsonObject>, known: &[&str]) -> Result<Self, McpError> {
        let object = object.unwrap_or_default();
        if let Some(unknown) = object.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(
                tool,
                unknown,
                format!("is not an argument of `{tool}`; it accepts {}", known.join(", ")),
            ));
        }
        Ok(Self { tool, object })
    }

    pub fn string(&self, field: &str) -> Result<Option<String>, McpError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(self.tool, field, format!("must be a string, not {}", kind(other)))),
        }
    }

    pub fn required_string(&self, field: &str) -> Result<String, McpError> {
        match self.string(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(invalid(self.tool, field, "must not be empty".into())),
            None => Err(invalid(self.tool, field, "is required".into())),
        }
    }

    pub fn bool(&self, field: &str) -> Result<bool, McpError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => {
                Err(invalid(self.tool, field, format!("must be true or false, not {}", kind(other))))
            }
        }
    }

    /// A string that must be one of `allowed`.
    pub fn choice(&self, field: &str, allowed: &[&str]) -> Result<Option<String>, McpError> {
        match self.string(field)? {
            Some(value) if !allowed.contains(&value.as_str()) => {
                Err(invalid(self.tool, field, format!("is {value:?}; use one of {}", allowed.join(", "))))
            }
            other => Ok(other),
        }
    }

    /// The first of several names for one field (e.g. `cwd` / `workingDirectory`).
    pub fn either(&self, fields: &[&str]) -> Result<Option<String>, McpError> {
        let mut found = None;
        for field in fields {
            if let Some(value) = self.string(field)? {
                if found.is_some() {
                    return Err(invalid(
                        self.tool,
                        field,
                        format!("duplicates {}; give only one", fields.join(" / ")),
                    ));
                }
                found = Some(value);
            }
        }
        Ok(found)
    }

    /// An object of configuration overrides, as `key` / TOML value pairs.
    pub fn config_overrides(&self, field: &str) -> Result<Vec<(String, String)>, McpError> {
        let Some(value) = self.object.get(field).filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
        let Value::Object(map) = value else {
            return Err(invalid(
                self.tool,
                field,
                format!("must be an object of settings, not {}", kind(value)),
            ));
        };
        map.iter()
            .map(|(key, value)| {
                toml_value(value).map(|toml| (key.clone(), toml)).ok_or_else(|| {
                    invalid(
                        self.tool,
                        &format!("{field}.{key}"),
                        "must be a string, number, boolean, or a list of those".into(),
                    )
                })
            })
            .collect()
    }
}

/// A JSON value as a TOML literal (scalars and flat arrays).
fn toml_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(serde_json::to_string(s).expect("strings serialise")),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => {
            let items: Option<Vec<String>> = items
                .iter()
                .map(|v| if v.is_array() || v.is_object() { None } else { toml_value(v) })
                .collect();
            Some(format!("[{}]", items?.join(", ")))
        }
        Value::Null | Value::Object(_) => None,
    }
}

pub fn invalid(tool: &str, field: &str, problem: String) -> McpError {
    McpError::invalid_params(
        format!("`{tool}`: `{field}` {problem}"),
        Some(json!({ "tool": tool, "field": field })),
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value, known: &[&'static str]) -> Result<Args<'static>, McpError> {
        Args::new("codex", value.as_object().cloned(), known)
    }

    #[test]
    fn errors_name_the_field() {
        let err = args(json!({"promt": "x"}), &["prompt"]).err().unwrap();
        assert!(err.message.contains("`promt` is not an argument of `codex`"), "{}", err.message);
        let a = args(json!({"prompt": 3, "sandbox": "yolo"}), &["prompt", "sandbox"]).unwrap();
        assert!(
            a.required_string("prompt")
                .unwrap_err()
                .message
                .contains("`prompt` must be a string, not a number")
        );
        let err = a.choice("sandbox", &["read-only", "workspace-write"]).unwrap_err();
        assert!(
            err.message.contains("`sandbox` is \"yolo\"; use one of read-only, workspace-write"),
            "{}",
            err.message
        );
        assert!(
            args(json!({}), &["prompt"])
                .unwrap()
                .required_string("prompt")
                .unwrap_err()
                .message
                .contains("is required")
        );
    }

    #[test]
    fn config_becomes_toml() {
        let a =
            args(json!({"config": {"a": "x\"y", "b": 2, "c": true, "d": ["p", 1]}}), &["config"]).unwrap();
        let pairs = a.config_overrides("config").unwrap();
        assert_eq!(
            pairs,
            [
                ("a".into(), "\"x\\\"y\"".into()),
                ("b".into(), "2".into()),
                ("c".into(), "true".into()),
                ("d".into(), "[\"p\", 1]".into())
            ]
        );
        let bad = args(json!({"config": {"nested": {"x": 1}}}), &["config"]).unwrap();
        assert!(bad.config_overrides("config").unwrap_err().message.contains("`config.nested`"));
    }
}
