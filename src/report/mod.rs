//! Rendering a drift report: JSON (the machine contract) and a self-contained
//! HTML page for people.

mod html;

pub use html::{render_html, HtmlContext};

use crate::monitor::DriftReport;

/// The JSON report, pretty-printed, with a trailing newline.
pub fn render_json(report: &DriftReport) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("report serializes");
    s.push('\n');
    s
}
