//! One self-contained HTML file: inline CSS and SVG, no scripts, no network.

use std::fmt::Write;

use crate::monitor::evaluate::{FeatureReport, Histogram, Tests};
use crate::monitor::DriftReport;

/// Colours for reference and current bars (colour-blind safe pair).
const REF_COLOUR: &str = "#4477aa";
const CUR_COLOUR: &str = "#ee7733";
/// Categories drawn per feature; the rest are summarised in a note.
const MAX_BARS: usize = 30;

pub struct HtmlContext<'a> {
    pub reference: &'a str,
    pub current: &'a str,
    pub model: Option<&'a str>,
    /// The learned checks, when they ran.
    pub learned: Option<&'a crate::learned::LearnedReport>,
}

pub fn render_html(report: &DriftReport, ctx: &HtmlContext<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let d = &report.dataset;
    let verdict = if d.drift {
        "Dataset drift detected"
    } else {
        "No dataset drift"
    };
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>driftd report: {title}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }}
.meta {{ color: #666; margin-bottom: 1.2rem; }}
.verdict {{ padding: .8rem 1rem; border-radius: 6px; font-weight: 600; margin-bottom: 1rem; }}
.verdict.drift {{ background: #fde2e1; color: #8a1c13; }}
.verdict.ok {{ background: #e3f4e6; color: #1d5e2b; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }}
th, td {{ text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e4e4e4; font-variant-numeric: tabular-nums; }}
th {{ background: #f6f6f6; }}
.tag {{ display: inline-block; padding: 0 .45rem; border-radius: 4px; font-size: .85em; font-weight: 600; }}
.tag.drift {{ background: #fde2e1; color: #8a1c13; }}
.tag.ok {{ background: #e3f4e6; color: #1d5e2b; }}
section.feature {{ border: 1px solid #e4e4e4; border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }}
section.feature h2 {{ font-size: 1.1rem; margin: 0 0 .4rem; }}
.cols {{ display: flex; gap: 1.5rem; flex-wrap: wrap; }}
.cols > div {{ flex: 1 1 320px; }}
.legend span {{ display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 .8rem; vertical-align: middle; }}
.note {{ color: #666; font-size: .9em; }}
</style></head><body>
<h1>Drift report{model}</h1>
<div class="meta">reference <code>{reference}</code> &middot; current <code>{current}</code> &middot; driftd {version}</div>
<div class="verdict {vclass}">{verdict}: {drifted} of {total} features drifted ({share:.1}%)</div>
<table><thead><tr><th>feature</th><th>kind</th><th>method</th><th>score</th><th>threshold</th><th>reference n</th><th>current n</th><th>missing (ref / cur)</th><th>drift</th></tr></thead><tbody>
"#,
        title = esc(ctx.current),
        model = ctx
            .model
            .map(|m| format!(": {}", esc(m)))
            .unwrap_or_default(),
        reference = esc(ctx.reference),
        current = esc(ctx.current),
        version = env!("CARGO_PKG_VERSION"),
        vclass = if d.drift { "drift" } else { "ok" },
        drifted = d.drifted,
        total = d.total,
        share = d.share * 100.0,
    );
    for f in &report.features {
        let _ = writeln!(
            out,
            r##"<tr><td><a href="#f-{id}">{name}</a></td><td>{kind}</td><td>{method}</td><td>{score}</td><td>{threshold}</td><td>{rn}</td><td>{cn}</td><td>{rm} / {cm}</td><td>{tag}</td></tr>"##,
            id = anchor(&f.name),
            name = esc(&f.name),
            kind = kind_label(f),
            method = f.method.name(),
            score = num(f.score),
            threshold = num(f.threshold),
            rn = f.reference_count,
            cn = f.current_count,
            rm = f.missing.reference,
            cm = f.missing.current,
            tag = tag(f.drift),
        );
    }
    out.push_str("</tbody></table>\n");
    if let Some(l) = ctx.learned {
        learned_section(&mut out, l);
    }
    for f in &report.features {
        feature_section(&mut out, f);
    }
    out.push_str("</body></html>\n");
    out
}

/// The learned checks: one row per check, with what it measured.
fn learned_section(out: &mut String, l: &crate::learned::LearnedReport) {
    let _ = writeln!(
        out,
        "<h2>Learned checks</h2>\n<div class=\"note\">samples: {} reference rows (of {}), {} current rows (of {})</div>\n<table><thead><tr><th>check</th><th>on</th><th>figures</th><th>drift</th></tr></thead><tbody>",
        l.reference_sample, l.reference_events, l.current_sample, l.current_events
    );
    let row = |out: &mut String, check: &str, on: &str, figures: String, drift: Option<bool>| {
        let _ = writeln!(
            out,
            "<tr><td>{check}</td><td>{}</td><td>{figures}</td><td>{}</td></tr>",
            esc(on),
            drift.map_or("skipped", tag)
        );
    };
    if let Some(c) = &l.classifier {
        match (&c.result, &c.skipped) {
            (Some(r), _) => row(
                out,
                "domain classifier",
                &c.columns.join(", "),
                if r.p_value.is_nan() {
                    format!(
                        "ROC AUC {} &plusmn; {} (no permutation p-value; AUC floor {})",
                        num(r.auc),
                        num(r.auc_std_error),
                        num(r.threshold)
                    )
                } else {
                    format!(
                        "ROC AUC {} &plusmn; {}, permutation p {} (alpha {}; AUC floor {})",
                        num(r.auc),
                        num(r.auc_std_error),
                        num(r.p_value),
                        num(r.level),
                        num(r.threshold)
                    )
                },
                Some(r.drift),
            ),
            (None, why) => row(
                out,
                "domain classifier",
                &c.columns.join(", "),
                esc(why.as_deref().unwrap_or_default()),
                None,
            ),
        }
    }
    for (name, e) in &l.embeddings {
        let mut figures = Vec::new();
        if let Some(m) = &e.mmd {
            figures.push(format!(
                "MMD&sup2; {}, p {} (alpha {}), mean shift {}",
                num(m.mmd2),
                num(m.p_value),
                num(e.alpha),
                num(m.mean_shift)
            ));
        }
        if let Some(c) = &e.classifier {
            figures.push(if c.p_value.is_nan() {
                format!("classifier ROC AUC {}", num(c.auc))
            } else {
                format!("classifier ROC AUC {}, p {}", num(c.auc), num(c.p_value))
            });
        }
        if let Some(why) = &e.skipped {
            figures.push(esc(why));
        }
        let ran = e.mmd.is_some() || e.classifier.is_some();
        row(
            out,
            "embedding",
            name,
            figures.join("; "),
            ran.then_some(e.drift),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn feature_section(out: &mut String, f: &FeatureReport) {
    let _ = write!(
        out,
        r#"<section class="feature" id="f-{id}"><h2>{name} {tag}</h2>
<div class="cols"><div><table><tbody>
"#,
        id = anchor(&f.name),
        name = esc(&f.name),
        tag = tag(f.drift),
    );
    let rows: Vec<(&str, String)> = match &f.tests {
        Tests::Numeric(t) => vec![
            ("KS statistic", num(t.ks.statistic)),
            ("KS p-value", num(t.ks.p_value)),
            ("Wasserstein distance", num(t.wasserstein.distance)),
            ("Wasserstein (normalized)", num(t.wasserstein.normalized)),
            ("PSI", num(t.psi.value)),
            ("Jensen-Shannon distance", num(t.jensen_shannon.distance)),
        ],
        Tests::Categorical(t) => vec![
            ("chi-square statistic", num(t.chi_square.statistic)),
            ("chi-square p-value", num(t.chi_square.p_value)),
            ("degrees of freedom", t.chi_square.dof.to_string()),
            ("PSI", num(t.psi.value)),
            ("Jensen-Shannon distance", num(t.jensen_shannon.distance)),
        ],
    };
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    let rule = if f.method.is_p_value() {
        "below"
    } else {
        "at or above"
    };
    let _ = write!(
        out,
        r#"</tbody></table>
<p class="note">Decision: <b>{method}</b> {score} {rule} threshold {threshold} means drift &rarr; <b>{verdict}</b>.</p></div>
<div><div class="legend"><span style="background:{REF_COLOUR}"></span>reference<span style="background:{CUR_COLOUR}"></span>current</div>
"#,
        method = f.method.name(),
        score = num(f.score),
        threshold = num(f.threshold),
        verdict = if f.drift { "drift" } else { "no drift" },
    );
    histogram_svg(out, &f.histogram);
    out.push_str("</div></div></section>\n");
}

/// Grouped horizontal bars: one row per bin or category.
fn histogram_svg(out: &mut String, h: &Histogram) {
    let n = h.labels.len().min(MAX_BARS);
    let row = 22.0;
    let label_w = 150.0;
    let bar_w = 300.0;
    let height = n as f64 * row + 24.0;
    let max = h
        .reference
        .iter()
        .chain(&h.current)
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-size="11" font-family="system-ui, sans-serif">"#,
        w = label_w + bar_w + 60.0,
    );
    for i in 0..n {
        let y = i as f64 * row + 4.0;
        let (r, c) = (h.reference[i], h.current[i]);
        let _ = writeln!(
            out,
            r##"<text x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect x="{label_w}" y="{y}" width="{rw:.2}" height="8" fill="{REF_COLOUR}"><title>reference {rp:.2}%</title></rect><rect x="{label_w}" y="{y2}" width="{cw:.2}" height="8" fill="{CUR_COLOUR}"><title>current {cp:.2}%</title></rect><text x="{vx:.2}" y="{ty}" fill="#666">{cp:.1}%</text>"##,
            lx = label_w - 6.0,
            ty = y + 12.0,
            label = esc(&truncate(&h.labels[i], 24)),
            rw = r / max * bar_w,
            y2 = y + 9.0,
            cw = c / max * bar_w,
            rp = r * 100.0,
            cp = c * 100.0,
            vx = label_w + (r.max(c) / max) * bar_w + 4.0,
        );
    }
    if h.labels.len() > n {
        let _ = writeln!(
            out,
            r##"<text x="0" y="{y}" fill="#666">{more} more categories not drawn</text>"##,
            y = n as f64 * row + 18.0,
            more = h.labels.len() - n
        );
    }
    out.push_str("</svg>\n");
}

fn kind_label(f: &FeatureReport) -> String {
    match f.derived_from {
        Some(k) => format!(
            "{} ({})",
            f.kind,
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => f.kind.to_owned(),
    }
}

fn tag(drift: bool) -> &'static str {
    if drift {
        r#"<span class="tag drift">drift</span>"#
    } else {
        r#"<span class="tag ok">ok</span>"#
    }
}

fn num(x: f64) -> String {
    if x == 0.0 || (1e-3..1e6).contains(&x.abs()) {
        format!("{:.4}", x)
    } else {
        format!("{:.3e}", x)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn numbers_stay_readable() {
        assert_eq!(num(0.0), "0.0000");
        assert_eq!(num(0.05), "0.0500");
        assert_eq!(num(1.2e-30), "1.200e-30");
    }
}
