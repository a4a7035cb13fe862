//! Charts drawn on the server as SVG: stacked bars, one per day, with each bar's figures in its
//! `<title>` (a tooltip, and text for screen readers). No script, no library in the browser.
//!
//! Every text that reaches the SVG is escaped here, so the markup can be placed in a page as is.

use std::fmt::Write as _;

/// One stacked series: its name, its colour and a value per day.
pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub values: Vec<u64>,
}

const WIDTH: u64 = 420;
const HEIGHT: u64 = 160;
const LEFT: u64 = 40;
const BOTTOM: u64 = 22;

pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A stacked bar chart: `labels` names each day (and each bar's tooltip says `details[i]`).
pub fn bars(title: &str, labels: &[String], details: &[String], series: &[Series]) -> String {
    let days = labels.len().max(1) as u64;
    let totals: Vec<u64> = (0..labels.len())
        .map(|day| series.iter().map(|s| s.values.get(day).copied().unwrap_or(0)).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_height = HEIGHT - BOTTOM - 8;
    let slot = (WIDTH - LEFT) / days;
    let bar = slot.saturating_sub(2).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    // Axis: the maximum and zero.
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{WIDTH}\" y2=\"{y}\" stroke=\"#c6ccd6\"/>\
         <text x=\"{x}\" y=\"14\" font-size=\"13\" text-anchor=\"end\" fill=\"#5b6472\">{max}</text>\
         <text x=\"{x}\" y=\"{y}\" font-size=\"13\" text-anchor=\"end\" fill=\"#5b6472\">0</text>",
        y = HEIGHT - BOTTOM,
        x = LEFT - 4,
    );
    for (day, label) in labels.iter().enumerate() {
        let x = LEFT + day as u64 * slot + 1;
        let mut top = HEIGHT - BOTTOM;
        let detail = details.get(day).map(String::as_str).unwrap_or_default();
        let _ = write!(svg, "<g><title>{}: {}</title>", escape(label), escape(detail));
        for s in series {
            let value = s.values.get(day).copied().unwrap_or(0);
            if value == 0 {
                continue;
            }
            let height = (value * plot_height).div_ceil(max).max(1);
            top -= height;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{top}\" width=\"{bar}\" height=\"{height}\" fill=\"{}\"/>",
                s.colour
            );
        }
        // A transparent bar over the whole slot, so that the tooltip answers anywhere in it.
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"8\" width=\"{bar}\" height=\"{plot_height}\" fill=\"transparent\"/></g>"
        );
        if day == 0 || day + 1 == labels.len() || day == labels.len() / 2 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\" fill=\"#5b6472\">{}</text>",
                x + bar / 2,
                HEIGHT - 6,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_day_and_escape_text() {
        let labels = vec!["11-01".to_owned(), "11-02".to_owned()];
        let details = vec!["<none>".to_owned(), "3 payments".to_owned()];
        let series = [
            Series { name: "ok".into(), colour: "#127a3a", values: vec![0, 2] },
            Series { name: "failed".into(), colour: "#b42318", values: vec![0, 1] },
        ];
        let svg = bars("Payments & refunds", &labels, &details, &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("aria-label=\"Payments &amp; refunds\""));
        assert!(svg.contains("&lt;none&gt;"), "tooltips are escaped");
        assert!(svg.contains(">3<"), "the axis shows the largest total");
        assert_eq!(svg.matches("fill=\"#127a3a\"").count(), 1, "an empty day draws no bar");
        let plot = HEIGHT - BOTTOM - 8;
        assert!(svg.contains(&format!("height=\"{}\"", (2 * plot).div_ceil(3))));
    }
}
