//! The sweep's outputs: an SVG chart (plotters' SVG backend: text is written as SVG `<text>`
//! and laid out by plotters' own estimate, so no system font is needed) of voice-to-voice
//! percentiles, the server's cores and its memory against concurrent interviews, and the same
//! figures as a Markdown table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::report::Report;

/// One series of the chart: a label and a value per level (`None`: not measured there).
struct Series<'a> {
    label: &'a str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

fn series<'a>(
    label: &'a str,
    color: RGBColor,
    reports: &[Report],
    value: impl Fn(&Report) -> Option<f64>,
) -> Series<'a> {
    Series {
        label,
        color,
        points: reports
            .iter()
            .filter_map(|r| Some((r.candidates.concurrency as f64, value(r)?)))
            .filter(|(_, v)| v.is_finite())
            .collect(),
    }
}

/// Draws one panel: `series` against concurrent interviews, the y axis from 0.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_label: &str,
    max_x: f64,
    series: &[Series<'_>],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, y)| *y))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_y)
        .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("concurrent interviews")
        .y_desc(y_label)
        .draw()
        .map_err(|e| anyhow::anyhow!("chart mesh: {e}"))?;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("chart series: {e}"))?
            .label(s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )
            .map_err(|e| anyhow::anyhow!("chart points: {e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("chart legend: {e}"))?;
    Ok(())
}

/// The chart as SVG text.
pub fn svg(reports: &[Report]) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (960, 1080)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("chart: {e}"))?;
        let max_x = reports
            .iter()
            .map(|r| r.candidates.concurrency as f64)
            .fold(1.0, f64::max);
        let panels = root.split_evenly((3, 1));
        let ms = |p: Option<f64>| p;
        panel(
            &panels[0],
            "Voice-to-voice latency",
            "ms",
            max_x,
            &[
                series("client p50", BLUE, reports, |r| ms(r.v2v_client_ms.p50)),
                series("client p95", CYAN, reports, |r| ms(r.v2v_client_ms.p95)),
                series("server p50", RED, reports, |r| ms(r.v2v_server_ms.p50)),
                series("server p95", MAGENTA, reports, |r| ms(r.v2v_server_ms.p95)),
            ],
        )?;
        panel(
            &panels[1],
            "Server CPU",
            "cores (average)",
            max_x,
            &[series("server cores", RED, reports, |r| r.server.cores_avg)],
        )?;
        panel(
            &panels[2],
            "Server memory",
            "MiB",
            max_x,
            &[
                series("peak RSS", RED, reports, |r| r.server.peak_rss_mib),
                series("RSS at peak live", BLUE, reports, |r| {
                    r.server.rss_at_peak_live_mib
                }),
            ],
        )?;
        root.present().map_err(|e| anyhow::anyhow!("chart: {e}"))?;
    }
    Ok(out)
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The sweep as a Markdown table, with the command that made it.
pub fn markdown(reports: &[Report], command: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "`{command}`\n");
    md.push_str(
        "| concurrent | ok / started | v2v client p50 / p95 / p99 ms | v2v server p50 / p95 ms \
         | engine overhead p50 / p99 ms | stalls | server cores | CPU % of a core per interview \
         | peak RSS MiB | RSS MiB per interview | barge-in client p95 / server p95 ms \
         | live actors after |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in reports {
        let s = &r.server;
        let _ = writeln!(
            md,
            "| {} | {} / {} | {} / {} / {} | {} / {} | {} / {} | {} | {} | {} | {} | {} | {} / {} | {} |",
            r.candidates.concurrency,
            r.interviews.completed,
            r.interviews.started,
            num(r.v2v_client_ms.p50, 0),
            num(r.v2v_client_ms.p95, 0),
            num(r.v2v_client_ms.p99, 0),
            num(r.v2v_server_ms.p50, 0),
            num(r.v2v_server_ms.p95, 0),
            num(r.engine_overhead_ms.p50, 1),
            num(r.engine_overhead_ms.p99, 1),
            r.stalls,
            num(s.cores_avg, 2),
            num(s.cpu_per_interview_pct, 2),
            num(s.peak_rss_mib, 0),
            num(s.rss_per_interview_mib, 2),
            num(r.barge_in_ms.p95, 0),
            num(r.barge_in_server_ms.and_then(|b| b.p95), 1),
            r.live_actors_after
                .map_or_else(|| "–".to_owned(), |n| n.to_string()),
        );
    }
    if let Some(source) = reports.first().map(|r| r.server.source.as_str()) {
        let _ = writeln!(md, "\nServer figures: `{source}`.");
    }
    md
}

/// Writes `sweep.svg`, `sweep.md` and `sweep.json` (the reports without their outcomes) to
/// `out`.
pub fn write_sweep(out: &Path, reports: &[Report], command: &str) -> anyhow::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write("sweep.svg", svg(reports)?.as_bytes())?;
    write("sweep.md", markdown(reports, command).as_bytes())?;
    let slim: Vec<Report> = reports
        .iter()
        .map(|r| Report {
            outcomes: Vec::new(),
            ..r.clone()
        })
        .collect();
    write("sweep.json", &serde_json::to_vec_pretty(&slim)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CandidateSettings, InterviewCounts, Percentiles, ServerFigures};

    fn level(concurrency: usize, p50: f64, cores: f64, rss: f64) -> Report {
        Report {
            candidates: CandidateSettings {
                concurrency,
                ..CandidateSettings::default()
            },
            interviews: InterviewCounts {
                started: concurrency,
                completed: concurrency,
                failed: 0,
            },
            v2v_client_ms: Percentiles::of(&[p50, p50 + 40.0]),
            v2v_server_ms: Percentiles::of(&[p50 - 80.0, p50 - 60.0]),
            server: ServerFigures {
                source: "process".into(),
                cores_avg: Some(cores),
                peak_rss_mib: Some(rss),
                rss_at_peak_live_mib: Some(rss * 0.9),
                rss_per_interview_mib: Some(1.2),
                cpu_per_interview_pct: Some(0.4),
                ..ServerFigures::default()
            },
            live_actors_after: Some(0),
            ..Report::default()
        }
    }

    #[test]
    fn the_sweep_chart_is_svg_with_its_labels_as_text_and_no_font_needed() {
        let reports = [
            level(1, 760.0, 0.02, 40.0),
            level(50, 770.0, 0.3, 110.0),
            level(200, 790.0, 1.1, 330.0),
        ];
        let svg = svg(&reports).expect("draws without system fonts");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for label in [
            "Voice-to-voice latency",
            "concurrent interviews",
            "client p95",
            "server p50",
            "Server CPU",
            "cores (average)",
            "peak RSS",
        ] {
            assert!(svg.contains(label), "{label} is drawn as text");
        }
        assert!(svg.matches("<text").count() > 20, "axis labels too");
        assert!(svg.contains("<polyline"), "the series");
    }

    #[test]
    fn the_sweep_table_has_a_row_per_level_and_the_command() {
        let reports = [level(1, 760.0, 0.02, 40.0), level(200, 790.0, 1.1, 330.0)];
        let md = markdown(&reports, "loadtest run --sweep 1,200 --out x");
        assert!(md.starts_with("`loadtest run --sweep 1,200 --out x`"));
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| 1") || l.starts_with("| 200"))
            .collect();
        assert_eq!(rows.len(), 2, "{md}");
        assert!(
            rows[1].contains("| 200 / 200 |") && rows[1].contains("| 1.10 |"),
            "{md}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        write_sweep(dir.path(), &reports, "cmd").expect("written");
        for name in ["sweep.svg", "sweep.md", "sweep.json"] {
            assert!(dir.path().join(name).is_file(), "{name}");
        }
    }
}
