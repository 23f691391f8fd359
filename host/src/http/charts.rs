//! Server-rendered SVG charts: no chart library, no CDN, no build step. Every text that goes
//! into a chart (stream and policy names are user data) is escaped here, which is why the
//! templates may insert the finished SVG unescaped.

use std::fmt::Write;

use super::error::escape;
use crate::engine::phases::Phase;
use crate::engine::report::Allocation;
use crate::text::truncate;

const PALETTE: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563",
];

pub fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One named line: (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 30.0;

/// Lines of accuracy (y in [0, 1]) over `x_label`, with a legend.
pub fn accuracy_lines(series: &[Series], x_label: &str) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in xs {
        x0 = x0.min(x);
        x1 = x1.max(x);
    }
    if !x0.is_finite() {
        return empty("no windows yet");
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + (1.0 - y.clamp(0.0, 1.0)) * ph;
    let mut svg = open("accuracy chart");
    axes(&mut svg, x0, x1, x_label, "accuracy", &sx, &sy);
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            color(i),
            pts.join(" ")
        );
        if let [(x, y)] = s.points.as_slice() {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                sx(*x),
                sy(*y),
                color(i)
            );
        }
        legend(&mut svg, i, &s.name);
    }
    svg.push_str("</svg>");
    svg
}

/// GPU allocation over one window, stacked: each stream's inference share (solid) and
/// retraining share (light) from each change on, over `horizon` seconds and `gpus` GPUs.
pub fn allocation_stack(
    allocs: &[Allocation],
    streams: &[String],
    horizon: f64,
    gpus: f64,
) -> String {
    if allocs.is_empty() || streams.is_empty() {
        return empty("no allocation yet");
    }
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |t: f64| LEFT + (t / horizon).clamp(0.0, 1.0) * pw;
    let sy = |g: f64| TOP + (1.0 - (g / gpus).clamp(0.0, 1.0)) * ph;
    let mut svg = open("GPU allocation chart");
    axes(
        &mut svg,
        0.0,
        horizon,
        "seconds into the window",
        "GPUs",
        &|t| sx(t),
        &|y| sy(y * gpus),
    );
    // Walk the changes in time order, keeping each stream's current shares.
    let mut current = vec![(0.0f64, 0.0f64); streams.len()];
    let mut sorted: Vec<&Allocation> = allocs.iter().collect();
    sorted.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut i = 0;
    while i < sorted.len() {
        let t0 = sorted[i].at;
        while i < sorted.len() && sorted[i].at <= t0 {
            if let Some(k) = streams.iter().position(|s| *s == sorted[i].stream) {
                current[k] = (sorted[i].infer_share, sorted[i].retrain_share);
            }
            i += 1;
        }
        let t1 = sorted.get(i).map_or(horizon, |a| a.at);
        let mut base = 0.0;
        for (k, (inf, ret)) in current.iter().enumerate() {
            for (share, opacity) in [(inf, 1.0), (ret, 0.4)] {
                if *share > 0.0 {
                    let (y_top, y_bottom) = (sy(base + share), sy(base));
                    let _ = write!(
                        svg,
                        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="{opacity}"/>"#,
                        sx(t0),
                        y_top,
                        (sx(t1) - sx(t0)).max(0.5),
                        (y_bottom - y_top).max(0.0),
                        color(k)
                    );
                    base += share;
                }
            }
        }
    }
    for (k, s) in streams.iter().enumerate() {
        legend(&mut svg, k, s);
    }
    let (x, y) = (
        W - RIGHT + 8.0,
        TOP + 14.0 * (streams.len() as f64 + 1.0) + 6.0,
    );
    let _ = write!(
        svg,
        r#"<text x="{x:.0}" y="{y:.0}" class="note">solid: inference</text><text x="{x:.0}" y="{:.0}" class="note">light: retraining</text>"#,
        y + 13.0
    );
    svg.push_str("</svg>");
    svg
}

/// Each phase's colour: the timeline's fills and the pages' badges (`.phase-NAME` in the
/// stylesheet) use the same ones, so a badge reads like the bar beside it.
pub fn phase_color(p: Phase) -> &'static str {
    match p {
        Phase::Active => "#16a34a",
        Phase::WarmIdle => "#d97706",
        Phase::Prewarmed => "#2563eb",
        Phase::Starting => "#7c3aed",
        Phase::Cold => "#6b7280",
    }
}

/// Every phase, in the order a stream goes from serving to scaled to zero (the legend's).
pub const PHASES: [Phase; 5] = [
    Phase::Active,
    Phase::WarmIdle,
    Phase::Prewarmed,
    Phase::Starting,
    Phase::Cold,
];

/// One row per stream: its phases over the window's `horizon` seconds, each `(from, phase)`
/// lasting until the next change or the window's end, with a legend of the phases below.
pub fn phase_timeline(rows: &[(&str, &[(f64, Phase)])], horizon: f64) -> String {
    const NAMES: f64 = 130.0;
    const ROW: f64 = 18.0;
    if rows.is_empty() {
        return empty("no stream");
    }
    let horizon = horizon.max(1e-9);
    let pw = W - NAMES - 10.0;
    let sx = |t: f64| NAMES + (t / horizon).clamp(0.0, 1.0) * pw;
    let axis = TOP + ROW * rows.len() as f64;
    let height = axis + 44.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0}" class="chart" role="img"><title>phases over the window</title>"#
    );
    for (i, (name, phases)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = write!(
            svg,
            r#"<text x="{:.0}" y="{:.0}" class="legend" text-anchor="end">{}</text>"#,
            NAMES - 6.0,
            y + 12.0,
            escape(&truncate(name, 18, Some('…')))
        );
        for (k, &(from, phase)) in phases.iter().enumerate() {
            let to = phases.get(k + 1).map_or(horizon, |p| p.0);
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{y:.0}" width="{:.1}" height="{:.0}" fill="{}"><title>{} from {from:.0} s to {to:.0} s</title></rect>"#,
                sx(from),
                (sx(to) - sx(from)).max(0.5),
                ROW - 4.0,
                phase_color(phase),
                phase.name()
            );
        }
    }
    for k in 0..=4 {
        let t = horizon * k as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.0}" class="tick" text-anchor="middle">{t:.0} s</text>"#,
            sx(t),
            axis + 10.0
        );
    }
    for (k, p) in PHASES.iter().enumerate() {
        let x = NAMES + 100.0 * k as f64;
        let _ = write!(
            svg,
            r#"<rect x="{x:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}" class="legend">{}</text>"#,
            axis + 22.0,
            phase_color(*p),
            x + 14.0,
            axis + 31.0,
            p.name()
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open(title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart" role="img"><title>{}</title>"#,
        escape(title)
    )
}

fn empty(msg: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} 40" class="chart"><text x="10" y="24" class="note">{}</text></svg>"#,
        escape(msg)
    )
}

fn axes(
    svg: &mut String,
    x0: f64,
    x1: f64,
    x_label: &str,
    y_label: &str,
    sx: &dyn Fn(f64) -> f64,
    sy: &dyn Fn(f64) -> f64,
) {
    for k in 0..=4 {
        let y = k as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{y:.2}</text>"#,
            W - RIGHT,
            sy(y),
            sy(y),
            LEFT - 4.0,
            sy(y) + 4.0
        );
    }
    for k in 0..=4 {
        let x = x0 + (x1 - x0) * k as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
            sx(x),
            H - BOTTOM + 14.0,
            if (x1 - x0) >= 8.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text><text x="10" y="{:.1}" class="tick" transform="rotate(-90 10 {:.1})" text-anchor="middle">{}</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 2.0,
        escape(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
}

fn legend(svg: &mut String, i: usize, name: &str) {
    let y = TOP + 14.0 * i as f64 + 8.0;
    let x = W - RIGHT + 8.0;
    let _ = write!(
        svg,
        r#"<rect x="{x:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}" class="legend">{}</text>"#,
        y - 8.0,
        color(i),
        x + 14.0,
        y + 1.0,
        escape(&truncate(name, 20, Some('…')))
    );
}
