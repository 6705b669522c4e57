//! Rendering a drift report: JSON (the machine contract) and a self-contained
//! HTML page for people.

mod html;

pub use html::{render_html, HtmlContext};

use crate::learned::LearnedReport;
use crate::monitor::DriftReport;

/// The JSON report, pretty-printed, with a trailing newline: the drift
/// report, and `learned` when the learned checks ran.
pub fn render_json(report: &DriftReport, learned: Option<&LearnedReport>) -> String {
    #[derive(serde::Serialize)]
    struct Full<'a> {
        #[serde(flatten)]
        drift: &'a DriftReport,
        #[serde(skip_serializing_if = "Option::is_none")]
        learned: Option<&'a LearnedReport>,
    }
    let mut s = serde_json::to_string_pretty(&Full {
        drift: report,
        learned,
    })
    .expect("report serializes");
    s.push('\n');
    s
}
