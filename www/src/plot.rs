//! Plots as SVG text: the page shows them inline and exports the same text as .svg (or draws it to a canvas for
//! .png). Line charts (steerability curves), histograms with marked values (activation norms vs the vector),
//! grouped bars (encode(SV) vs encode(0), signed projections), strip plots (default components) and scatter plots
//! (a population of features by input and output score).
//! Non-finite values are left out rather than breaking the axes.

use std::fmt::Write;

const W: f64 = 560.0;
const H: f64 = 300.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 46.0;
pub const COLOURS: [&str; 6] = ["#3461c1", "#e07b22", "#2a9d6f", "#c23b5a", "#7b5cc4", "#6b7280"];

/// A named line of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One category of a grouped bar chart or strip plot: a value (bars) or values (strips) per group, and for strips
/// an optional marked value (drawn as a diamond).
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub label: String,
    pub groups: Vec<Vec<f64>>,
    pub marker: Option<f64>,
}

/// A linear axis from `lo` to `hi` onto pixels `a` to `b`.
#[derive(Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl Axis {
    /// An axis covering `values` (and `include`), padded to round ticks.
    fn fit(values: impl Iterator<Item = f64>, include: &[f64], a: f64, b: f64) -> (Self, Vec<f64>) {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.chain(include.iter().copied()).filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let ticks = ticks(lo, hi);
        let (lo, hi) = (lo.min(ticks[0]), hi.max(*ticks.last().expect("ticks are never empty")));
        (Self { lo, hi, a, b }, ticks)
    }

    fn px(&self, v: f64) -> f64 {
        self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)
    }
}

/// About five round ticks covering [lo, hi].
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The frame every chart shares: title, axis labels, y grid and ticks. Returns the open `<svg>` text.
fn frame(title: &str, x_label: &str, y_label: &str, y: &Axis, y_ticks: &[f64]) -> String {
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="13"><rect width="{W}" height="{H}" fill="white"/><text x="{LEFT}" y="18" font-size="15" font-weight="600" fill="#1d2330">{t}</text>"##,
        t = esc(title)
    );
    for &t in y_ticks {
        let py = y.px(t);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{py:.1}" y2="{py:.1}" stroke="#e3e6ee"/><text x="{tx}" y="{ty:.1}" text-anchor="end" fill="#5a6275">{l}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = py + 4.0,
            l = label(t)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{cx}" y="{by}" text-anchor="middle" fill="#5a6275">{xl}</text><text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" fill="#5a6275">{yl}</text>"##,
        cx = (LEFT + W - RIGHT) / 2.0,
        by = H - 8.0,
        cy = (TOP + H - BOTTOM) / 2.0,
        xl = esc(x_label),
        yl = esc(y_label)
    );
    s
}

fn x_ticks(s: &mut String, x: &Axis, ticks: &[f64]) {
    for &t in ticks.iter().filter(|t| (x.lo..=x.hi).contains(*t)) {
        let px = x.px(t);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{y1}" y2="{y2}" stroke="#9aa1b2"/><text x="{px:.1}" y="{ty}" text-anchor="middle" fill="#5a6275">{l}</text>"##,
            y1 = H - BOTTOM,
            y2 = H - BOTTOM + 4.0,
            ty = H - BOTTOM + 16.0,
            l = label(t)
        );
    }
}

/// The legend, right-aligned under the title: a square of each series' colour, and when `diamond` is given, that
/// last entry drawn as the dark diamond the plot marks it with.
fn legend(s: &mut String, names: &[&str], diamond: Option<&str>) {
    let mut x = W - RIGHT;
    let entries = names.iter().map(|n| (*n, false)).chain(diamond.map(|d| (d, true)));
    let entries: Vec<(&str, bool)> = entries.collect();
    for (i, (name, is_diamond)) in entries.iter().enumerate().rev() {
        x -= 16.0 + 7.2 * name.chars().count() as f64;
        let swatch = if *is_diamond {
            format!(
                r##"<path d="M{a:.1} 25L{b:.1} 30L{a:.1} 35L{c:.1} 30Z" fill="#1d2330"/>"##,
                a = x + 5.0,
                b = x + 10.0,
                c = x
            )
        } else {
            format!(r#"<rect x="{x:.1}" y="25" width="10" height="10" fill="{}"/>"#, COLOURS[i % COLOURS.len()])
        };
        let _ =
            write!(s, r##"{swatch}<text x="{tx:.1}" y="35" fill="#1d2330">{n}</text>"##, tx = x + 14.0, n = esc(name));
        x -= 8.0;
    }
}

fn axes(s: &mut String) {
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{b}" stroke="#9aa1b2"/><line x1="{LEFT}" x2="{r}" y1="{b}" y2="{b}" stroke="#9aa1b2"/>"##,
        b = H - BOTTOM,
        r = W - RIGHT
    );
}

/// Lines with points, e.g. the behaviour's mean logit difference against the multiplier, one line per vector.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let all = || series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (x, mut xt) = Axis::fit(all().map(|p| p.0), &[], LEFT, W - RIGHT);
    // Whole-number x (layers) gets whole-number ticks only: no layer 0.5.
    if all().all(|(a, _)| a.fract() == 0.0) {
        xt.retain(|t| t.fract().abs() < 1e-9);
        if xt.len() < 2 && x.hi - x.lo <= 24.0 {
            xt = (x.lo.ceil() as i64..=x.hi.floor() as i64).map(|i| i as f64).collect();
        }
    }
    let (y, yt) = Axis::fit(all().map(|p| p.1), &[], H - BOTTOM, TOP);
    let mut s = frame(title, x_label, y_label, &y, &yt);
    x_ticks(&mut s, &x, &xt);
    axes(&mut s);
    for (i, series) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|&(a, b)| (x.px(a), y.px(b)))
            .collect();
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = write!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#, path.join(" "));
        let values = series.points.iter().filter(|(a, b)| a.is_finite() && b.is_finite());
        for ((a, b), (vx, vy)) in pts.into_iter().zip(values) {
            // Hover shows the point's values.
            let t = esc(&format!("{} · {x_label} {}: {}", series.label, label(*vx), label(*vy)));
            let _ = write!(s, r#"<circle cx="{a:.1}" cy="{b:.1}" r="3.5" fill="{c}"><title>{t}</title></circle>"#);
        }
    }
    legend(&mut s, &series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(), None);
    s + "</svg>"
}

/// Bars over bins (`edges` one longer than `counts`), with labelled vertical marks (e.g. the vector's norm).
pub fn histogram(title: &str, x_label: &str, edges: &[f64], counts: &[f64], marks: &[(&str, f64)]) -> String {
    let mark_values: Vec<f64> = marks.iter().map(|m| m.1).collect();
    let (x, xt) = Axis::fit(edges.iter().copied(), &mark_values, LEFT, W - RIGHT);
    let (y, yt) = Axis::fit(counts.iter().copied(), &[0.0], H - BOTTOM, TOP);
    let mut s = frame(title, x_label, "count", &y, &yt);
    x_ticks(&mut s, &x, &xt);
    for (i, &c) in counts.iter().enumerate().filter(|(_, c)| c.is_finite()) {
        let (Some(&a), Some(&b)) = (edges.get(i), edges.get(i + 1)) else { break };
        let (x0, x1, y0) = (x.px(a), x.px(b), y.px(c));
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{t}</title></rect>"#,
            w = (x1 - x0 - 1.0).max(0.5),
            h = (y.px(0.0) - y0).max(0.0),
            c = COLOURS[0],
            t = esc(&format!("{} to {}: {}", label(a), label(b), label(c)))
        );
    }
    axes(&mut s);
    // Each mark's label sits above the plot area, one row per mark, so no bar can hide it; its dashed line runs
    // up to the label.
    for (i, (name, v)) in marks.iter().enumerate().filter(|(_, m)| m.1.is_finite()) {
        let (px, c) = (x.px(*v), COLOURS[(i + 3) % COLOURS.len()]);
        let anchor = if px > W * 0.7 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let ty = 32.0 + 14.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{px:.1}" x2="{px:.1}" y1="{top:.1}" y2="{b}" stroke="{c}" stroke-width="2" stroke-dasharray="5 3"/><text x="{tx:.1}" y="{ty}" text-anchor="{anchor}" fill="{c}" font-weight="600">{n}</text>"#,
            top = ty - 10.0,
            b = H - BOTTOM,
            tx = px + dx,
            n = esc(&format!("{name} {}", label(*v)))
        );
    }
    s + "</svg>"
}

fn category_labels(s: &mut String, cats: &[Category], width: f64) {
    let small = cats.len() > 10;
    for (i, c) in cats.iter().enumerate() {
        let cx = LEFT + width * (i as f64 + 0.5);
        let _ = write!(
            s,
            r##"<text x="{cx:.1}" y="{ty}" text-anchor="middle" fill="#5a6275"{fs}>{l}</text>"##,
            ty = H - BOTTOM + 16.0,
            fs = if small { r#" font-size="11""# } else { "" },
            l = esc(&c.label)
        );
    }
}

/// Side-by-side bars, one per group in each category (`groups[g]` holds one value), with a zero line.
pub fn grouped_bars(title: &str, x_label: &str, y_label: &str, groups: &[&str], cats: &[Category]) -> String {
    let values = || cats.iter().flat_map(|c| c.groups.iter().filter_map(|g| g.first().copied()));
    let (y, yt) = Axis::fit(values(), &[0.0], H - BOTTOM, TOP);
    let mut s = frame(title, x_label, y_label, &y, &yt);
    let width = (W - RIGHT - LEFT) / cats.len().max(1) as f64;
    let bar = width * 0.8 / groups.len().max(1) as f64;
    for (i, c) in cats.iter().enumerate() {
        for (g, v) in c.groups.iter().enumerate() {
            let Some(&v) = v.first().filter(|v| v.is_finite()) else { continue };
            let x0 = LEFT + width * (i as f64 + 0.1) + bar * g as f64;
            let (a, b) = (y.px(v), y.px(0.0));
            let _ = write!(
                s,
                r#"<rect x="{x0:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{t}</title></rect>"#,
                top = a.min(b),
                w = (bar - 1.0).max(0.5),
                h = (a - b).abs().max(0.5),
                c = COLOURS[g % COLOURS.len()],
                t = esc(&format!("{} · {}: {}", c.label, groups.get(g).unwrap_or(&""), label(v)))
            );
        }
    }
    category_labels(&mut s, cats, width);
    let z = y.px(0.0);
    let _ = write!(s, r##"<line x1="{LEFT}" x2="{r}" y1="{z:.1}" y2="{z:.1}" stroke="#1d2330"/>"##, r = W - RIGHT);
    legend(&mut s, groups, None);
    s + "</svg>"
}

/// Dots per group spread across each category's slot, the group mean as a bar, and the marked value as a diamond.
pub fn strip_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[&str],
    marker: &str,
    cats: &[Category],
) -> String {
    let values = || cats.iter().flat_map(|c| c.groups.iter().flatten().copied().chain(c.marker));
    let (y, yt) = Axis::fit(values(), &[0.0], H - BOTTOM, TOP);
    let mut s = frame(title, x_label, y_label, &y, &yt);
    let width = (W - RIGHT - LEFT) / cats.len().max(1) as f64;
    let lane = width * 0.8 / groups.len().max(1) as f64;
    for (i, c) in cats.iter().enumerate() {
        for (g, vals) in c.groups.iter().enumerate() {
            let colour = COLOURS[g % COLOURS.len()];
            let x0 = LEFT + width * (i as f64 + 0.1) + lane * g as f64;
            let finite: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
            for (j, v) in finite.iter().enumerate() {
                // Deterministic spread across the lane (golden-ratio sequence), so re-renders do not jitter.
                let jitter = (j as f64 * 0.618_034).fract();
                let _ = write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="1.8" fill="{colour}" fill-opacity="0.45"/>"#,
                    cx = x0 + lane * (0.15 + 0.7 * jitter),
                    cy = y.px(*v)
                );
            }
            if !finite.is_empty() {
                let m = y.px(finite.iter().sum::<f64>() / finite.len() as f64);
                let _ = write!(
                    s,
                    r#"<line x1="{a:.1}" x2="{b:.1}" y1="{m:.1}" y2="{m:.1}" stroke="{colour}" stroke-width="2.5"/>"#,
                    a = x0 + lane * 0.05,
                    b = x0 + lane * 0.95
                );
            }
        }
        if let Some(v) = c.marker.filter(|v| v.is_finite()) {
            let (cx, cy) = (LEFT + width * (i as f64 + 0.5), y.px(v));
            let _ = write!(
                s,
                r##"<path d="M{cx:.1} {a:.1}L{b:.1} {cy:.1}L{cx:.1} {c:.1}L{d:.1} {cy:.1}Z" fill="#1d2330"><title>{t}</title></path>"##,
                a = cy - 5.0,
                b = cx + 5.0,
                c = cy + 5.0,
                d = cx - 5.0,
                t = esc(&format!("{} · {marker}: {}", c.label, label(v)))
            );
        }
    }
    category_labels(&mut s, cats, width);
    axes(&mut s);
    legend(&mut s, groups, Some(marker));
    s + "</svg>"
}

/// Points only, one colour per series (earlier series drawn first, so later, smaller ones sit on top), with dashed
/// threshold lines at `x_line` and `y_line` (e.g. the 75th percentile of each score).
pub fn scatter(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    x_line: Option<f64>,
    y_line: Option<f64>,
) -> String {
    let all = || series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let xs: Vec<f64> = x_line.into_iter().collect();
    let ys: Vec<f64> = y_line.into_iter().collect();
    let (x, xt) = Axis::fit(all().map(|p| p.0), &xs, LEFT, W - RIGHT);
    let (y, yt) = Axis::fit(all().map(|p| p.1), &ys, H - BOTTOM, TOP);
    let mut s = frame(title, x_label, y_label, &y, &yt);
    x_ticks(&mut s, &x, &xt);
    axes(&mut s);
    let dashed = |s: &mut String, (x1, y1, x2, y2): (f64, f64, f64, f64)| {
        let _ = write!(
            s,
            r##"<line x1="{x1:.1}" x2="{x2:.1}" y1="{y1:.1}" y2="{y2:.1}" stroke="#9aa1b2" stroke-dasharray="5 3"/>"##
        );
    };
    if let Some(v) = x_line.filter(|v| v.is_finite()) {
        dashed(&mut s, (x.px(v), TOP, x.px(v), H - BOTTOM));
    }
    if let Some(v) = y_line.filter(|v| v.is_finite()) {
        dashed(&mut s, (LEFT, y.px(v), W - RIGHT, y.px(v)));
    }
    for (i, series) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let r = if i == 0 { 2.5 } else { 4.0 };
        for &(a, b) in series.points.iter().filter(|(a, b)| a.is_finite() && b.is_finite()) {
            let t = esc(&format!("{} · {x_label} {}, {y_label} {}", series.label, label(a), label(b)));
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{c}" fill-opacity="0.7"><title>{t}</title></circle>"#,
                x.px(a),
                y.px(b)
            );
        }
    }
    legend(&mut s, &series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(), None);
    s + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(s: &str, pat: &str) -> usize {
        s.matches(pat).count()
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = ticks(-3.2, 17.9);
        assert!(t[0] <= -3.2 && *t.last().unwrap() >= 17.9 && t.len() <= 8);
        assert_eq!(label(2.0), "2");
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(1.5e-5), "1.5e-5");
    }

    #[test]
    fn line_chart_draws_every_finite_point() {
        let s = line_chart(
            "Steer <ability>",
            "multiplier",
            "logit diff",
            &[
                Series { label: "SV".into(), points: vec![(-1.0, -2.0), (0.0, 0.0), (1.0, 2.0)] },
                Series { label: "reconstruction".into(), points: vec![(-1.0, 0.1), (0.0, f64::NAN), (1.0, 0.2)] },
            ],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(count(&s, "<circle"), 5);
        assert_eq!(count(&s, "<polyline"), 2);
        assert!(s.contains("Steer &lt;ability&gt;") && !s.contains("NaN"));
    }

    #[test]
    fn histogram_marks_and_degenerate_input() {
        let s = histogram("norms", "‖x‖", &[0.0, 1.0, 2.0, 3.0], &[4.0, 9.0, 1.0], &[("steering vector", 0.2)]);
        assert_eq!(count(&s, "<rect"), 1 + 3);
        assert!(s.contains("steering vector") && s.contains("stroke-dasharray"));
        // Empty or constant data still gives a valid frame.
        let e = histogram("empty", "x", &[], &[], &[]);
        assert!(e.ends_with("</svg>") && !e.contains("NaN") && !e.contains("inf"));
        let c = line_chart("flat", "x", "y", &[Series { label: "a".into(), points: vec![(1.0, 5.0), (2.0, 5.0)] }]);
        assert!(!c.contains("NaN"));
    }

    #[test]
    fn scatter_draws_points_and_threshold_lines() {
        let all = Series { label: "sample".into(), points: vec![(0.0, 0.1), (0.5, f64::NAN), (1.0, 0.3)] };
        let top = Series { label: "top".into(), points: vec![(1.0, 0.3)] };
        let s = scatter("population", "input", "output", &[all, top], Some(0.25), Some(0.2));
        assert_eq!(count(&s, "<circle"), 3);
        assert_eq!(count(&s, "stroke-dasharray"), 2);
        assert!(s.contains("top · input 1, output 0.3"));
    }

    #[test]
    fn bars_and_strips() {
        let cats = vec![
            Category { label: "#12".into(), groups: vec![vec![3.0], vec![-1.0]], marker: None },
            Category { label: "#7".into(), groups: vec![vec![0.5], vec![2.0]], marker: None },
        ];
        let s = grouped_bars("encode", "feature", "activation", &["encode(0)", "encode(SV)"], &cats);
        assert_eq!(count(&s, "<title>"), 4);
        assert!(s.contains("#12 · encode(0): 3"));
        let strips = vec![Category {
            label: "#3".into(),
            groups: vec![vec![1.0, 2.0, 3.0], vec![], vec![0.5]],
            marker: Some(-0.25),
        }];
        let s = strip_plot("defaults", "feature", "projection", &["corpus", "positive", "negative"], "SV", &strips);
        assert_eq!(count(&s, "<circle"), 4);
        assert!(s.contains("#3 · SV: -0.25"));
    }

    #[test]
    fn layers_get_whole_ticks_strip_legends_show_the_diamond_and_marks_sit_above_the_bars() {
        let layers =
            Series { label: "steerability".into(), points: (0..3).map(|l| (l as f64, l as f64 * 0.1)).collect() };
        let s = line_chart("by layer", "layer", "steerability", &[layers]);
        for half in [">0.5<", ">1.5<"] {
            assert!(!s.contains(half), "a half-layer tick in {s}");
        }
        assert!(s.contains(">1<") && s.contains("<title>steerability · layer 2: 0.2</title>"));
        let strips = vec![Category { label: "#3".into(), groups: vec![vec![1.0]], marker: Some(0.5) }];
        let s = strip_plot("defaults", "feature", "projection", &["corpus"], "steering vector", &strips);
        // The legend's diamond (as well as the plot's) and no legend square in a colour for the vector.
        assert_eq!(count(&s, "fill=\"#1d2330\"/>"), 1);
        assert_eq!(count(&s, "<rect x="), 1);
        let h = histogram("norms", "x", &[0.0, 1.0], &[10.0], &[("steering vector", 0.2), ("median", 0.8)]);
        let label_y: Vec<f64> = h
            .match_indices("font-weight=\"600\">")
            .filter_map(|(i, _)| h[..i].rsplit("y=\"").next()?.split('"').next()?.parse().ok())
            .collect();
        assert_eq!(label_y.len(), 2, "{h}");
        assert!(label_y.iter().all(|&y| y < TOP), "mark labels inside the plot: {label_y:?}");
        assert!(h.contains("median 0.8"));
    }
}
