//! Checks Kubernetes objects against the API schema through k8s-openapi's
//! typed objects. Deserializing alone would accept a misspelled field (it
//! is skipped), so the object is also serialized back and compared: any
//! field that did not survive the round trip is not in the schema.

use anyhow::{Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Checks one object (a parsed YAML document) by its apiVersion and kind.
pub fn check_object(value: &Value) -> Result<()> {
    let api = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    match (api, kind) {
        ("batch/v1", "Job") => round_trip::<Job>(value),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(value),
        ("apps/v1", "StatefulSet") => round_trip::<StatefulSet>(value),
        ("v1", "Service") => round_trip::<Service>(value),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(value),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(value),
        ("v1", "Secret") => round_trip::<Secret>(value),
        ("v1", "Namespace") => round_trip::<Namespace>(value),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(value),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(value),
        ("networking.k8s.io/v1", "NetworkPolicy") => round_trip::<NetworkPolicy>(value),
        _ => bail!("no schema for apiVersion `{api}`, kind `{kind}`"),
    }
}

/// Parses and checks every document of a multi-document YAML text.
pub fn check_yaml_documents(text: &str) -> Result<usize> {
    let mut count = 0;
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if value.is_null() {
            continue;
        }
        check_object(&value).map_err(|e| {
            anyhow::anyhow!(
                "{} {}: {e}",
                value.get("kind").and_then(Value::as_str).unwrap_or("?"),
                value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            )
        })?;
        count += 1;
    }
    Ok(count)
}

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<()> {
    let typed: T = serde_json::from_value(value.clone())
        .map_err(|e| anyhow::anyhow!("does not match the schema: {e}"))?;
    let back = serde_json::to_value(&typed)?;
    if let Some(path) = first_difference(value, &back, String::new()) {
        bail!("`{path}` is not a field of this kind, or has the wrong form");
    }
    Ok(())
}

/// The first path where `original` has something `back` does not.
fn first_difference(original: &Value, back: &Value, path: String) -> Option<String> {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().find_map(|(key, value)| match b.get(key) {
                Some(other) => first_difference(value, other, format!("{path}.{key}")),
                // Empty objects and lists are dropped by the typed objects.
                None if is_empty(value) => None,
                None => Some(format!("{path}.{key}")),
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        // YAML `cpu: 2` and the typed `"2"` are the same quantity.
        (Value::Number(a), Value::String(b)) if a.to_string() == *b => None,
        _ => Some(if path.is_empty() { ".".into() } else { path }),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_field_is_named() {
        let job = serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x"},
            "spec": {"backoffLimit": 1, "activeDeadlineSecond": 5,
                     "template": {"spec": {"containers": [{"name": "c"}]}}}
        });
        let err = check_object(&job).unwrap_err().to_string();
        assert!(err.contains(".spec.activeDeadlineSecond"), "{err}");
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let job = serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "x"}, "spec": {"backoffLimit": "two", "template": {}}
        });
        assert!(check_object(&job).is_err());
        let unknown = serde_json::json!({"apiVersion": "v9", "kind": "Thing"});
        assert!(
            check_object(&unknown)
                .unwrap_err()
                .to_string()
                .contains("no schema")
        );
    }
}
