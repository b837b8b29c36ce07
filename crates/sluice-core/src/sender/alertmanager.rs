//! Prometheus Alertmanager's webhook, payload version 4: one row per alert. A row's document is
//! the alert object as received (its keys first, in their order) followed by the group's context
//! under the names of [`GROUP_KEYS`] (the group's `status` as `groupStatus`, since the alert has
//! its own `status`). A group key the alert itself carries is not added.

use serde_json::{Map, Value};

use super::{Documents, SenderError};

/// (body key, document key) of the group's context copied into every alert's document.
pub const GROUP_KEYS: [(&str, &str); 7] = [
    ("receiver", "receiver"),
    ("status", "groupStatus"),
    ("groupKey", "groupKey"),
    ("groupLabels", "groupLabels"),
    ("commonLabels", "commonLabels"),
    ("commonAnnotations", "commonAnnotations"),
    ("externalURL", "externalURL"),
];

pub fn split(body: Value) -> Result<Documents, SenderError> {
    let Value::Object(mut body) = body else {
        return Err(SenderError::Shape("the body must be Alertmanager's webhook JSON object".into()));
    };
    match body.get("version") {
        Some(Value::String(v)) if v == "4" => {}
        Some(other) => return Err(SenderError::Version { found: other.to_string() }),
        None => return Err(SenderError::Shape("version is missing: Alertmanager sends \"version\": \"4\"".into())),
    }
    let truncated_alerts = match body.get("truncatedAlerts") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| SenderError::Shape("truncatedAlerts is not a whole number".into()))?,
    };
    let alerts = match body.remove("alerts") {
        Some(Value::Array(alerts)) if !alerts.is_empty() => alerts,
        Some(Value::Array(_)) => return Err(SenderError::Shape("alerts is empty".into())),
        _ => return Err(SenderError::Shape("alerts is missing or not an array".into())),
    };
    let context: Vec<(&str, &Value)> =
        GROUP_KEYS.iter().filter_map(|(from, to)| Some((*to, body.get(*from)?))).collect();
    let rows = alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| {
            let Value::Object(mut document) = alert else {
                return Err(SenderError::Shape(format!("alerts[{i}] is not a JSON object")));
            };
            for (key, value) in &context {
                if !document.contains_key(*key) {
                    document.insert((*key).to_owned(), (*value).clone());
                }
            }
            Ok(document)
        })
        .collect::<Result<Vec<Map<String, Value>>, _>>()?;
    Ok(Documents { rows, truncated_alerts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(alerts: Value) -> Value {
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"DiskFull\"}",
            "truncatedAlerts": 2,
            "status": "firing",
            "receiver": "sluice",
            "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
            "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": alerts,
        })
    }

    #[test]
    fn each_alert_is_a_row_with_the_group_context_after_its_own_keys() {
        let docs = split(body(json!([
            {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-01"}, "fingerprint": "aa"},
            {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-02"}, "fingerprint": "bb"},
        ])))
        .unwrap();
        assert_eq!(docs.truncated_alerts, 2);
        assert_eq!(docs.rows.len(), 2);
        let first = &docs.rows[0];
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "status",
                "labels",
                "fingerprint",
                "receiver",
                "groupStatus",
                "groupKey",
                "groupLabels",
                "commonLabels",
                "commonAnnotations",
                "externalURL"
            ]
        );
        assert_eq!(first["status"], "firing");
        assert_eq!(docs.rows[1]["status"], "resolved", "the alert's own status, not the group's");
        assert_eq!(docs.rows[1]["groupStatus"], "firing");
        assert_eq!(docs.rows[1]["commonLabels"]["severity"], "critical");
    }

    #[test]
    fn other_versions_and_shapes_are_refused_naming_the_field() {
        let mut v3 = body(json!([{"status": "firing"}]));
        v3["version"] = json!("3");
        assert_eq!(split(v3), Err(SenderError::Version { found: "\"3\"".into() }));
        let mut missing = body(json!([{}]));
        missing.as_object_mut().unwrap().remove("version");
        assert!(matches!(split(missing), Err(SenderError::Shape(m)) if m.starts_with("version")));
        assert_eq!(split(body(json!([]))), Err(SenderError::Shape("alerts is empty".into())));
        assert_eq!(split(body(json!([{}, 1]))), Err(SenderError::Shape("alerts[1] is not a JSON object".into())));
        let mut truncated = body(json!([{}]));
        truncated["truncatedAlerts"] = json!("many");
        assert!(matches!(split(truncated), Err(SenderError::Shape(m)) if m.starts_with("truncatedAlerts")));
    }
}
