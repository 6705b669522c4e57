//! The retrain / redeploy / rollback event CI receives: a CloudEvents 1.0
//! event in structured JSON mode (`Content-Type:
//! application/cloudevents+json`). The event id is the decision id; it never
//! changes across retries and doubles as the Standard Webhooks `webhook-id`,
//! so receivers can deduplicate.

use serde::{Deserialize, Serialize};

/// Media type of a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// What driftd asks CI to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Retrain,
    Redeploy,
    Rollback,
    CandidateRejected,
    /// A `notify` rule fired: an alert, nothing to deploy.
    Notify,
    /// A scheduled evaluation report.
    Report,
}

impl Action {
    /// The CloudEvents `type` attribute.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Retrain => "io.driftd.model.retrain.requested",
            Self::Redeploy => "io.driftd.model.redeploy.requested",
            Self::Rollback => "io.driftd.model.rollback.requested",
            Self::CandidateRejected => "io.driftd.model.candidate.rejected",
            Self::Notify => "io.driftd.model.notify.requested",
            Self::Report => "io.driftd.model.report.scheduled",
        }
    }
}

/// A CloudEvents 1.0 event with a JSON `data` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    /// URI reference naming this driftd instance, e.g. `/driftd/prod-eu-1`.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The model the event is about.
    pub subject: String,
    /// RFC 3339.
    pub time: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
}

impl CloudEvent {
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        action: Action,
        model: impl Into<String>,
        time_ms: i64,
        data: serde_json::Value,
    ) -> Self {
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(time_ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Self {
            specversion: "1.0".into(),
            id: id.into(),
            source: source.into(),
            event_type: action.event_type().into(),
            subject: model.into(),
            time,
            datacontenttype: "application/json".into(),
            data,
        }
    }

    /// The structured-mode body.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a CloudEvent serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_mode_has_every_required_attribute() {
        let e = CloudEvent::new(
            "dec-42",
            "/driftd/test",
            Action::Retrain,
            "alt-text-captioner",
            1_795_478_400_000,
            serde_json::json!({"model": "alt-text-captioner", "reason": "dataset drift"}),
        );
        let v: serde_json::Value = serde_json::from_slice(&e.to_body()).unwrap();
        // CloudEvents 1.0 required attributes, and the optional ones driftd sets.
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], "dec-42");
        assert_eq!(v["source"], "/driftd/test");
        assert_eq!(v["type"], "io.driftd.model.retrain.requested");
        assert_eq!(v["subject"], "alt-text-captioner");
        assert_eq!(v["time"], "2026-11-24T00:00:00Z");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["reason"], "dataset drift");
        // Attribute names are lower-case alphanumerics, as the spec requires.
        for k in v.as_object().unwrap().keys() {
            assert!(
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{k}"
            );
        }
        let back: CloudEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn every_action_has_its_type() {
        let types: Vec<&str> = [
            Action::Retrain,
            Action::Redeploy,
            Action::Rollback,
            Action::CandidateRejected,
            Action::Notify,
        ]
        .iter()
        .map(|a| a.event_type())
        .collect();
        assert_eq!(
            types,
            [
                "io.driftd.model.retrain.requested",
                "io.driftd.model.redeploy.requested",
                "io.driftd.model.rollback.requested",
                "io.driftd.model.candidate.rejected",
                "io.driftd.model.notify.requested"
            ]
        );
    }
}
