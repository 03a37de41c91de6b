//! The benchmark chart: per-query times per engine as grouped bars on a
//! log scale, one self-contained SVG file (no script, no external fonts).

use std::fmt::Write as _;

use super::report::plural;
use super::{BenchEngine, TpchBenchReport};
use fairway_observe::timeline::escape;

const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;
/// Space from the legend's last line to the plot.
const LEGEND_GAP: f64 = 22.0;
const PLOT_HEIGHT: f64 = 320.0;
const BOTTOM: f64 = 56.0;
const BAR: f64 = 15.0;
const GROUP_GAP: f64 = 14.0;

fn colour(engine: BenchEngine) -> &'static str {
    match engine {
        BenchEngine::Fairway => "#1b9e77",
        BenchEngine::DataFusion => "#7570b3",
    }
}

/// A time for an axis label: ms below a second, s above.
fn time_label(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{} s", trim_float(seconds))
    } else if seconds >= 1e-3 {
        format!("{} ms", trim_float(seconds * 1e3))
    } else {
        format!("{} µs", trim_float(seconds * 1e6))
    }
}

/// The width of `text` at `size` px in Helvetica, over-estimated (0.62 em
/// per character), so that what is laid out by it stays in the canvas.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.62
}

fn trim_float(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl TpchBenchReport {
    /// The chart as a standalone SVG document: one bar per query and engine
    /// (the median, with a line from the fastest to the slowest run), a
    /// logarithmic time axis, the geometric means and their ratio in the
    /// legend, and each bar's figures as a tooltip.
    pub fn to_svg(&self) -> String {
        let engines = self.engines().to_vec();
        let queries = self.queries().to_vec();
        let group = engines.len() as f64 * BAR + GROUP_GAP;
        let title = self.title();
        let iterations = self.options.iterations;
        let what = match self.options.streams {
            None => format!(
                "median time per query ({iterations} run{} each, planning included); \
                 line: fastest to slowest run",
                plural(iterations)
            ),
            Some(streams) => format!(
                "median response time per query ({iterations} run{} x {streams} \
                 concurrent stream{}); line: fastest to slowest",
                plural(iterations),
                plural(streams)
            ),
        };
        let subtitle = format!("Bar: {what}. Log scale, lower is better.");
        let footnote = "Under each query: fairway median / datafusion median (red above 1.10).";
        // Wide enough for the bars, the title and the notes.
        let width = (LEFT + RIGHT + group * queries.len() as f64)
            .max(560.0)
            .max(LEFT + RIGHT + text_width(&title, 15.0))
            .max(LEFT + RIGHT + text_width(&subtitle, 12.0))
            .max(LEFT + RIGHT + text_width(footnote, 10.0));
        // Legend entries (engine swatches with their geometric means, then
        // the ratio), wrapped onto as many lines as the width needs.
        let mut entries: Vec<(Option<BenchEngine>, String)> = engines
            .iter()
            .map(|&engine| {
                let gm = self
                    .geometric_mean(engine)
                    .map_or("-".to_string(), |g| format!("{g:.3} s"));
                (Some(engine), format!("{engine}: geometric mean {gm}"))
            })
            .collect();
        if let Some(ratio) = self.ratio() {
            entries.push((None, format!("fairway / datafusion = {ratio:.3}")));
        }
        let mut placed = Vec::new();
        let (mut lx, mut ly) = (LEFT, 52.0);
        for (engine, label) in entries {
            let w = text_width(&label, 12.0) + if engine.is_some() { 17.0 } else { 0.0 };
            if lx > LEFT && lx + w > width - RIGHT {
                (lx, ly) = (LEFT, ly + 18.0);
            }
            placed.push((lx, ly, engine, label));
            lx += w + 18.0;
        }
        let top = ly + 12.0 + LEGEND_GAP;
        let height = top + PLOT_HEIGHT + BOTTOM;
        let bottom = top + PLOT_HEIGHT;

        // The axis spans whole decades around every time drawn.
        let mut lo = f64::INFINITY;
        let mut hi = 0.0f64;
        for &engine in &engines {
            for &query in &queries {
                if let Some(s) = self.stats(engine, query) {
                    lo = lo.min(s.min.as_secs_f64());
                    hi = hi.max(s.max.as_secs_f64());
                }
            }
        }
        if !lo.is_finite() || hi <= 0.0 {
            (lo, hi) = (1e-3, 1.0);
        }
        let lo_exp = lo.max(1e-6).log10().floor();
        let mut hi_exp = hi.max(1e-6).log10().ceil();
        if hi_exp <= lo_exp {
            hi_exp = lo_exp + 1.0;
        }
        let y = |seconds: f64| {
            let f = (seconds.max(1e-6).log10() - lo_exp) / (hi_exp - lo_exp);
            bottom - PLOT_HEIGHT * f.clamp(0.0, 1.0)
        };

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"Helvetica, Arial, sans-serif\" \
             font-size=\"12\">"
        );
        let _ = writeln!(
            svg,
            "<rect width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{LEFT}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
            escape(&title)
        );
        let _ = writeln!(
            svg,
            "<text x=\"{LEFT}\" y=\"40\" fill=\"#555\">{}</text>",
            escape(&subtitle)
        );
        for (x, y, engine, label) in placed {
            match engine {
                Some(engine) => {
                    let _ = writeln!(
                        svg,
                        "<rect class=\"legend\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"12\" height=\"12\" \
                         fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                        colour(engine),
                        x + 17.0,
                        y + 10.0,
                        escape(&label)
                    );
                }
                None => {
                    let _ = writeln!(
                        svg,
                        "<text x=\"{x:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
                        y + 10.0,
                        escape(&label)
                    );
                }
            }
        }

        // Grid: every decade, lighter lines at 2x and 5x.
        let mut exp = lo_exp;
        while exp <= hi_exp {
            let decade = 10f64.powf(exp);
            for (m, major) in [(1.0, true), (2.0, false), (5.0, false)] {
                let v = decade * m;
                if exp == hi_exp && m > 1.0 {
                    continue;
                }
                let yy = y(v);
                let _ = writeln!(
                    svg,
                    "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"{}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\"{}>{}</text>",
                    width - RIGHT,
                    if major { "#bbb" } else { "#e6e6e6" },
                    LEFT - 6.0,
                    yy + 4.0,
                    if major { "" } else { " font-size=\"10\"" },
                    time_label(v)
                );
            }
            exp += 1.0;
        }
        let _ = writeln!(
            svg,
            "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" \
             fill=\"#444\">time (log scale)</text>",
            top + PLOT_HEIGHT / 2.0
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\" stroke=\"#333\"/>",
            width - RIGHT
        );

        for (i, &query) in queries.iter().enumerate() {
            let gx = LEFT + GROUP_GAP / 2.0 + group * i as f64;
            for (j, &engine) in engines.iter().enumerate() {
                let Some(s) = self.stats(engine, query) else {
                    continue;
                };
                let bx = gx + BAR * j as f64;
                let top = y(s.median.as_secs_f64());
                let tooltip = format!(
                    "Q{query} {engine}: median {:.3} s, min {:.3} s, max {:.3} s, {} run{}",
                    s.median.as_secs_f64(),
                    s.min.as_secs_f64(),
                    s.max.as_secs_f64(),
                    s.runs,
                    plural(s.runs)
                );
                let _ = writeln!(
                    svg,
                    "<rect class=\"bar\" data-query=\"{query}\" data-engine=\"{engine}\" \
                     x=\"{bx:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                     <title>{}</title></rect>",
                    BAR - 2.0,
                    (bottom - top).max(0.5),
                    colour(engine),
                    escape(&tooltip)
                );
                let cx = bx + (BAR - 2.0) / 2.0;
                let _ = writeln!(
                    svg,
                    "<line class=\"range\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" \
                     stroke=\"#222\" stroke-width=\"1\"/>",
                    y(s.min.as_secs_f64()),
                    y(s.max.as_secs_f64())
                );
            }
            let centre = gx + BAR * engines.len() as f64 / 2.0 - 1.0;
            let _ = writeln!(
                svg,
                "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Q{query}</text>",
                bottom + 16.0
            );
            if let (Some(f), Some(d)) = (
                self.stats(BenchEngine::Fairway, query),
                self.stats(BenchEngine::DataFusion, query),
            ) {
                let ratio = f.median.as_secs_f64() / d.median.as_secs_f64();
                let _ = writeln!(
                    svg,
                    "<text x=\"{centre:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
                     fill=\"{}\">{ratio:.2}×</text>",
                    bottom + 30.0,
                    if ratio > 1.10 { "#b2182b" } else { "#555" }
                );
            }
        }
        if engines.len() == 2 {
            let _ = writeln!(
                svg,
                "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#555\">{footnote}</text>",
                bottom + 46.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::harness::{MachineInfo, Measurement, TpchBenchOptions};
    use fairway_engine::EngineConfig;

    fn report(queries: &[usize], engines: &[BenchEngine]) -> TpchBenchReport {
        let mut measurements = Vec::new();
        for &query in queries {
            for (e, &engine) in engines.iter().enumerate() {
                for iteration in 0..3 {
                    let ms = 10 * query as u64 + 5 * e as u64 + iteration as u64;
                    measurements.push(Measurement {
                        engine,
                        query,
                        iteration,
                        stream: None,
                        start: Duration::ZERO,
                        elapsed: Duration::from_millis(ms),
                        rows: 4,
                    });
                }
            }
        }
        TpchBenchReport {
            options: TpchBenchOptions {
                scale_factor: 0.01,
                data: PathBuf::from("target/tpch/sf0.01"),
                queries: queries.to_vec(),
                iterations: 3,
                engines: engines.to_vec(),
                streams: None,
                fairway: EngineConfig::with_slots(2),
            },
            measurements,
            throughput_runs: Vec::new(),
            mismatches: Vec::new(),
            answers_checked: 0,
            machine: MachineInfo::current(),
            started_unix: 0,
        }
    }

    #[test]
    fn the_chart_is_svg_with_one_bar_per_query_and_engine() {
        let engines = [BenchEngine::Fairway, BenchEngine::DataFusion];
        let queries = [1, 6, 13, 22];
        let r = report(&queries, &engines);
        let svg = r.to_svg();
        let doc = roxmltree::Document::parse(&svg).expect("the chart is well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let bars: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .collect();
        assert_eq!(bars.len(), queries.len() * engines.len());
        for &q in &queries {
            for e in engines {
                let bar = bars
                    .iter()
                    .find(|b| {
                        b.attribute("data-query") == Some(&q.to_string())
                            && b.attribute("data-engine") == Some(e.as_str())
                    })
                    .unwrap_or_else(|| panic!("no bar for Q{q} on {e}"));
                let height: f64 = bar.attribute("height").unwrap().parse().unwrap();
                assert!(height > 0.0);
            }
        }
        // A slower query has a taller bar (log scale, same engine).
        let height = |q: &str| -> f64 {
            bars.iter()
                .find(|b| b.attribute("data-query") == Some(q))
                .unwrap()
                .attribute("height")
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(height("22") > height("1"));
        let text: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join("\n");
        let gm = r.geometric_mean(BenchEngine::Fairway).unwrap();
        assert!(
            text.contains(&format!("fairway: geometric mean {gm:.3} s")),
            "{text}"
        );
        assert!(text.contains("datafusion: geometric mean"), "{text}");
        assert!(text.contains("fairway / datafusion = "), "{text}");
        assert!(text.contains("Q13"), "{text}");
        assert!(!svg.contains("<script"));
    }

    /// Every text's estimated extent lies inside the canvas, for one query
    /// to all 22, one engine or two.
    #[test]
    fn legends_and_ratios_stay_inside_the_canvas_for_any_number_of_queries() {
        let all: Vec<usize> = (1..=22).collect();
        for queries in [&[6][..], &[1, 6], &all[..8], &all[..]] {
            for engines in [
                &[BenchEngine::Fairway, BenchEngine::DataFusion][..],
                &[BenchEngine::Fairway][..],
            ] {
                let svg = report(queries, engines).to_svg();
                let doc = roxmltree::Document::parse(&svg).unwrap();
                let root = doc.root_element();
                let width: f64 = root.attribute("width").unwrap().parse().unwrap();
                let height: f64 = root.attribute("height").unwrap().parse().unwrap();
                for node in doc.descendants().filter(|n| n.has_tag_name("text")) {
                    if node.attribute("transform").is_some() {
                        continue; // the rotated axis title
                    }
                    let text = node.text().unwrap_or_default();
                    let x: f64 = node.attribute("x").unwrap().parse().unwrap();
                    let y: f64 = node.attribute("y").unwrap().parse().unwrap();
                    let size: f64 = node
                        .attribute("font-size")
                        .map_or(if y < 30.0 { 15.0 } else { 12.0 }, |s| s.parse().unwrap());
                    let w = text_width(text, size);
                    let (left, right) = match node.attribute("text-anchor") {
                        Some("middle") => (x - w / 2.0, x + w / 2.0),
                        Some("end") => (x - w, x),
                        _ => (x, x + w),
                    };
                    assert!(
                        left >= 0.0 && right <= width && y > 0.0 && y <= height,
                        "{} queries, {} engines: {text:?} spans {left:.0}..{right:.0} \
                         at y {y:.0} in {width:.0} x {height:.0}",
                        queries.len(),
                        engines.len()
                    );
                }
                // The legend never overlaps the plot: its last line is above
                // the highest grid line.
                let legend_bottom = doc
                    .descendants()
                    .filter(|n| n.attribute("class") == Some("legend"))
                    .map(|n| n.attribute("y").unwrap().parse::<f64>().unwrap() + 12.0)
                    .fold(0.0, f64::max);
                let plot_top = doc
                    .descendants()
                    .filter(|n| n.has_tag_name("line") && n.attribute("y1").is_some())
                    .map(|n| n.attribute("y1").unwrap().parse::<f64>().unwrap())
                    .fold(f64::INFINITY, f64::min);
                assert!(legend_bottom < plot_top, "{legend_bottom} vs {plot_top}");
            }
        }
    }

    #[test]
    fn one_engine_and_an_empty_run_still_draw() {
        let r = report(&[3], &[BenchEngine::Fairway]);
        let svg = r.to_svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count();
        assert_eq!(bars, 1);
        let mut empty = report(&[3], &[BenchEngine::DataFusion]);
        empty.measurements.clear();
        roxmltree::Document::parse(&empty.to_svg()).unwrap();
    }
}
