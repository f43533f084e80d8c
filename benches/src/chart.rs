//! `chart.png`: wall time per layer (stacked, so the bar is end to end)
//! beside the one-process run's, and peak memory per layer and in one
//! process, per engine, from the medians of the report. Drawn
//! with plotters' bitmap backend and a TrueType font read from a file, so
//! no system C library (fontconfig, freetype) is needed.

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::engines::{LAYERS, Mode};
use crate::report::{EngineReport, Report};

const FONT: &str = "sans-serif";
/// Where Debian's fonts-dejavu-core and fonts-liberation put their fonts.
const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
];

const LAYER_COLORS: [RGBColor; 3] = [
    RGBColor(176, 112, 52),  // bronze
    RGBColor(150, 156, 168), // silver
    RGBColor(214, 170, 40),  // gold
];
const ONE_PROCESS_COLOR: RGBColor = RGBColor(52, 92, 150);
const ONE_PROCESS: &str = "one process";

/// Makes a TrueType font available to plotters, from MEDALLION_BENCH_FONT
/// or one of Debian's font packages.
fn register_font() -> Result<()> {
    let candidates: Vec<String> = std::env::var("MEDALLION_BENCH_FONT")
        .into_iter()
        .chain(FONT_FILES.iter().map(|f| f.to_string()))
        .collect();
    let path = candidates.iter().find(|p| Path::new(p).is_file()).context(
        "no TrueType font for the chart: `apt-get install fonts-dejavu-core`, \
             or set MEDALLION_BENCH_FONT to a .ttf file",
    )?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable TrueType font"))?;
    Ok(())
}

/// Draws the chart of the engines whose results matched.
pub fn draw(report: &Report, path: &Path) -> Result<()> {
    register_font()?;
    let engines: Vec<&EngineReport> = report
        .engines
        .iter()
        .filter(|e| e.verdict.reportable())
        .collect();
    if engines.is_empty() {
        bail!("no engine has results that match; nothing to chart");
    }
    let root = BitMapBackend::new(path, (1280, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Reference pipeline, TPC-H scale {}: median of {} run(s), {} cores{}",
        report.scale,
        report.runs,
        report.machine.cores,
        report
            .memory_limit
            .as_ref()
            .map(|l| format!(", medallion pool {l}"))
            .unwrap_or_default()
    );
    let (top, body) = root.split_vertically(50);
    top.draw(&Text::new(
        title,
        (640, 15),
        (FONT, 26)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let (left, right) = body.split_horizontally(640);
    draw_time(&left, &engines)?;
    draw_memory(&right, &engines)?;
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One bar position per engine at 0, 1, 2...
fn engine_axis(engines: &[&EngineReport]) -> std::ops::Range<f64> {
    -0.5..engines.len() as f64 - 0.5
}

/// With one more label than engines, the axis puts its ticks at whole
/// numbers, where the engines' bars are; other ticks stay blank.
fn engine_label(engines: &[&EngineReport], x: f64) -> String {
    let index = x.round();
    if (x - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    engines
        .get(index as usize)
        .map(|e| e.engine.clone())
        .unwrap_or_default()
}

fn value_label(text: String, x: f64, y: f64) -> Text<'static, (f64, f64), String> {
    Text::new(
        text,
        (x, y),
        (FONT, 16)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom)),
    )
}

fn draw_time(area: &Area, engines: &[&EngineReport]) -> Result<()> {
    let medians: Vec<Vec<f64>> = engines
        .iter()
        .map(|e| {
            LAYERS
                .iter()
                .map(|l| e.layer(l).map_or(0.0, |s| s.wall_seconds.median))
                .collect()
        })
        .collect();
    let one_process: Vec<f64> = engines
        .iter()
        .map(|e| {
            e.total(Mode::OneProcess)
                .map_or(0.0, |s| s.wall_seconds.median)
        })
        .collect();
    let highest = medians
        .iter()
        .map(|m| m.iter().sum::<f64>())
        .chain(one_process.iter().copied())
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Wall time: per layer (stacked) and one process (s)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(engine_axis(engines), 0.0..highest.max(0.001) * 1.2)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(engines.len() + 1)
        .x_label_formatter(&|x| engine_label(engines, *x))
        .y_desc("seconds")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 16))
        .draw()?;
    // Per layer left of the engine's tick, one process right of it.
    const LEFT: f64 = -0.19;
    const RIGHT: f64 = 0.19;
    const HALF: f64 = 0.17;
    for (index, layer) in LAYERS.iter().enumerate() {
        let color = LAYER_COLORS[index];
        chart
            .draw_series(medians.iter().enumerate().map(|(i, m)| {
                let below: f64 = m[..index].iter().sum();
                let x = i as f64 + LEFT;
                Rectangle::new(
                    [(x - HALF, below), (x + HALF, below + m[index])],
                    color.filled(),
                )
            }))?
            .label(*layer)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .draw_series(one_process.iter().enumerate().map(|(i, &wall)| {
            let x = i as f64 + RIGHT;
            Rectangle::new(
                [(x - HALF, 0.0), (x + HALF, wall)],
                ONE_PROCESS_COLOR.filled(),
            )
        }))?
        .label(ONE_PROCESS)
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], ONE_PROCESS_COLOR.filled()));
    let totals = medians.iter().map(|m| m.iter().sum::<f64>());
    let labels = totals
        .enumerate()
        .map(|(i, total)| (i as f64 + LEFT, total))
        .chain(
            one_process
                .iter()
                .enumerate()
                .map(|(i, &wall)| (i as f64 + RIGHT, wall)),
        )
        // A mode that was not run has no bar, so no label either.
        .filter(|&(_, seconds)| seconds > 0.0)
        .map(|(x, seconds)| value_label(format!("{seconds:.2} s"), x, seconds));
    chart.draw_series(labels)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_memory(area: &Area, engines: &[&EngineReport]) -> Result<()> {
    let medians: Vec<Vec<f64>> = engines
        .iter()
        .map(|e| {
            LAYERS
                .iter()
                .map(|l| e.layer(l))
                .chain([e.total(Mode::OneProcess)])
                .map(|s| s.map_or(0.0, |s| s.peak_rss_bytes.median / 1048576.0))
                .collect()
        })
        .collect();
    let highest = medians.iter().flatten().copied().fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Peak memory of the process tree: per layer, one process (MiB)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        // Headroom above the bars for the four-entry legend.
        .build_cartesian_2d(engine_axis(engines), 0.0..highest.max(1.0) * 1.6)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(engines.len() + 1)
        .x_label_formatter(&|x| engine_label(engines, *x))
        .y_desc("MiB")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 16))
        .draw()?;
    const WIDTH: f64 = 0.22;
    let steps = LAYERS.iter().copied().chain([ONE_PROCESS]);
    let colors = LAYER_COLORS.iter().copied().chain([ONE_PROCESS_COLOR]);
    for (index, (step, color)) in steps.zip(colors).enumerate() {
        let offset = (index as f64 - 1.5) * WIDTH;
        chart
            .draw_series(medians.iter().enumerate().map(|(i, m)| {
                let x = i as f64 + offset;
                Rectangle::new(
                    [
                        (x - WIDTH / 2.0 + 0.01, 0.0),
                        (x + WIDTH / 2.0 - 0.01, m[index]),
                    ],
                    color.filled(),
                )
            }))?
            .label(step)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(
            medians
                .iter()
                .enumerate()
                .filter(|(_, m)| m[index] > 0.0)
                .map(|(i, m)| value_label(format!("{:.0}", m[index]), i as f64 + offset, m[index])),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::report::tests::{engine, report, with_one_process};

    #[test]
    fn draws_a_png_of_the_engines_that_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        let report = report(vec![
            with_one_process(
                engine("medallion", Verdict::Reference, &[2.0, 2.2], 400),
                &[1.8, 1.9],
                380,
            ),
            with_one_process(
                engine("duckdb", Verdict::Same, &[3.0, 3.1], 600),
                &[2.0, 2.1],
                650,
            ),
        ]);
        draw(&report, &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // An image with text and bars compresses far less than a blank one.
        assert!(png.len() > 20_000, "{} bytes", png.len());
    }

    #[test]
    fn nothing_to_draw_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let failed = Verdict::Failed {
            error: "boom".into(),
        };
        let report = report(vec![engine("medallion", failed, &[2.0], 400)]);
        assert!(draw(&report, &dir.path().join("chart.png")).is_err());
    }
}
