//! A bar chart as SVG, readable at a glance: one group of bars per
//! forwarder, one bar per measure, the value printed at the end of each bar.

use std::fmt::Write;

/// One group: a label, two values, and a note printed beside them.
pub struct Bar {
    pub label: String,
    pub values: [f64; 2],
    pub note: String,
}

const COLOURS: [&str; 2] = ["#2b6cb0", "#a0aec0"];

/// Escape text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Draw `bars` under `title`; `series` names the two values.
pub fn bars(title: &str, bars: &[Bar], series: [&str; 2]) -> String {
    let (left, width, bar_h, gap) = (130.0, 420.0, 14.0, 12.0);
    let group_h = 2.0 * bar_h + gap;
    let top = 56.0;
    let height = top + group_h * bars.len() as f64 + 30.0;
    let max = bars
        .iter()
        .flat_map(|b| b.values)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">"#,
        w = left + width + 190.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, name) in series.iter().enumerate() {
        let x = left + 160.0 * i as f64;
        let _ = writeln!(
            s,
            r##"<rect x="{x}" y="30" width="12" height="12" fill="{}"/><text x="{}" y="40">{}</text>"##,
            COLOURS[i],
            x + 16.0,
            esc(name)
        );
    }
    for (g, b) in bars.iter().enumerate() {
        let y0 = top + group_h * g as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y0 + bar_h + 4.0,
            esc(&b.label)
        );
        for (i, v) in b.values.iter().enumerate() {
            let y = y0 + bar_h * i as f64;
            let w = (width * v / max).max(0.5);
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{v:.3}</text>"#,
                bar_h - 2.0,
                COLOURS[i],
                left + w + 4.0,
                y + bar_h - 3.0
            );
        }
        if !b.note.is_empty() {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" fill="#555">{}</text>"##,
                left + width + 60.0,
                y0 + bar_h + 4.0,
                esc(&b.note)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_group_per_bar_scaled_to_the_largest() {
        let svg = bars(
            "t <1>",
            &[
                Bar {
                    label: "a".into(),
                    values: [1.0, 2.0],
                    note: "p99 3.0 µs".into(),
                },
                Bar {
                    label: "b".into(),
                    values: [0.5, 0.0],
                    note: String::new(),
                },
            ],
            ["x", "y"],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"));
        // The largest value spans the full width; half of it, half.
        assert!(svg.contains(r#"width="420.0""#), "{svg}");
        assert!(svg.contains(r#"width="105.0""#), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 4);
        assert!(svg.contains("p99 3.0 µs"));
    }
}
