//! The plot of BENCHMARKS.md: hook -> callback latency (p50 and p99)
//! against the number of subscriptions, from a `--json` report, as a
//! self-contained SVG (log scale of subscriptions, linear milliseconds).

use std::fmt::Write as _;

use serde_json::Value;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// The SVG, or `None` when the report has fewer than one scaling level.
pub fn render(report: &Value) -> Option<String> {
    let levels = report["figures"]["scaling"]["levels"].as_array()?;
    let points: Vec<(f64, f64, f64)> = levels
        .iter()
        .filter_map(|l| {
            Some((
                l["subscriptions"].as_f64()?,
                l["p50_ms"].as_f64()?,
                l["p99_ms"].as_f64()?,
            ))
        })
        .filter(|(n, _, _)| *n >= 1.0)
        .collect();
    if points.is_empty() {
        return None;
    }
    let lo = points.iter().map(|p| p.0.log10()).fold(f64::INFINITY, f64::min).floor();
    let hi = points
        .iter()
        .map(|p| p.0.log10())
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        .max(lo + 1.0);
    let top_ms = nice(points.iter().map(|p| p.2).fold(0.0, f64::max));
    let x = |n: f64| LEFT + (n.log10() - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT);
    let y = |ms: f64| HEIGHT - BOTTOM - ms / top_ms * (HEIGHT - TOP - BOTTOM);

    let mut svg = String::new();
    let database = report["database"].as_str().unwrap_or("?");
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">tagcast broker ({database}): hook to callback latency against subscriptions</text>"#,
        WIDTH / 2.0
    );
    // Axes and grid.
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let _ = writeln!(
        svg,
        r#"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="black" fill="none"/>"#
    );
    let mut decade = lo;
    while decade <= hi {
        let n = 10f64.powf(decade);
        let px = x(n);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{y0}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y0 + 18.0,
            group(n)
        );
        decade += 1.0;
    }
    for i in 0..=4 {
        let ms = top_ms * f64::from(i) / 4.0;
        let py = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{ms:.1}</text>"#,
            x0 - 6.0,
            py + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">subscriptions (log scale)</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">milliseconds</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    // The two series.
    for (name, color, pick) in [("p50", "#1f77b4", 1usize), ("p99", "#d62728", 2)] {
        let value = |p: &(f64, f64, f64)| if pick == 1 { p.1 } else { p.2 };
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { "L" }, x(p.0), y(value(p))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<path d="{}" stroke="{color}" stroke-width="2" fill="none"/>"#,
            path.join(" ")
        );
        for p in &points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{name} {} ms at {} subscriptions</title></circle>"#,
                x(p.0),
                y(value(p)),
                value(p),
                group(p.0)
            );
        }
        let ly = if pick == 1 { TOP + 10.0 } else { TOP + 26.0 };
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            x1 - 70.0,
            x1 - 50.0,
            x1 - 44.0,
            ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// A round upper bound for the y axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= max)
        .unwrap_or(10.0 * magnitude)
}

/// 100000 -> "100,000".
fn group(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_each_level_and_needs_one() {
        let report = serde_json::json!({"database": "sqlite", "figures": {"scaling": {"levels": [
            {"subscriptions": 1000, "p50_ms": 2.0, "p99_ms": 5.0},
            {"subscriptions": 100000, "p50_ms": 3.0, "p99_ms": 9.0}
        ]}}});
        let svg = render(&report).unwrap();
        assert_eq!(svg.matches("<circle").count(), 4, "{svg}");
        assert!(svg.contains("100,000"));
        assert!(render(&serde_json::json!({"figures": {}})).is_none());
        assert_eq!(nice(9.0), 10.0);
        assert_eq!(nice(0.3), 0.5);
    }
}
