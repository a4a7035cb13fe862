//! The benchmark's pictures, as SVG: each phase's latency distribution, and each phase's
//! throughput over time.
//!
//! The distribution is drawn as a percentile spectrum: latency against the percentile, on a
//! scale that gives each nine the same width (90 %, 99 %, 99.9 %, ...), so that the tail,
//! where stalls show, is as wide as the body.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// One phase's line: its name and its points.
pub(crate) struct Line<'a> {
    pub(crate) name: &'a str,
    pub(crate) points: Vec<(f64, f64)>,
}

const SIZE: (u32, u32) = (900, 520);
const LIGHT: RGBColor = RGBColor(242, 242, 242);
const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];

/// Where a quantile sits on the spectrum's horizontal axis: 1 / (1 - q), so 90 % at 10,
/// 99 % at 100.
pub(crate) fn spectrum_x(quantile: f64) -> f64 {
    1.0 / (1.0 - quantile)
}

/// The percentile a spectrum position stands for, as its label ("99.9 %").
fn percentile_label(x: &f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

/// Latency (ms, logarithmic) against the percentile, one line per phase; points are
/// `(spectrum_x(q), latency at q)`.
pub(crate) fn latency_svg(title: &str, lines: &[Line<'_>]) -> anyhow::Result<String> {
    let x_max = max_of(lines, |(x, _)| x).max(10.0);
    let y_min =
        lines.iter().flat_map(|line| line.points.iter().map(|(_, y)| *y)).fold(f64::INFINITY, f64::min);
    let y_min = if y_min.is_finite() && y_min > 0.0 { y_min / 1.5 } else { 0.1 };
    let y_max = (max_of(lines, |(_, y)| y) * 1.5).max(y_min * 10.0);
    let axes = Axes {
        x_desc: "percentile",
        y_desc: "latency (ms)",
        x_label: &percentile_label,
        y_label: &|y| format!("{y}"),
    };
    chart(title, lines, (1.0..x_max).log_scale(), (y_min..y_max).log_scale(), &axes)
}

/// Completions per second (linear) against seconds into the phase, one line per phase.
pub(crate) fn throughput_svg(title: &str, lines: &[Line<'_>]) -> anyhow::Result<String> {
    let x_max = max_of(lines, |(x, _)| x).max(1.0);
    let y_max = (max_of(lines, |(_, y)| y) * 1.15).max(1.0);
    let axes = Axes {
        x_desc: "seconds into the phase",
        y_desc: "completed per second",
        x_label: &|x| format!("{x:.1}"),
        y_label: &|y| format!("{y:.0}"),
    };
    chart(title, lines, 0.0..x_max, 0.0..y_max, &axes)
}

/// What the axes say.
struct Axes<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    x_label: &'a dyn Fn(&f64) -> String,
    y_label: &'a dyn Fn(&f64) -> String,
}

/// A chart of `lines` on the axes `x` and `y`, with a legend in the lower right corner.
fn chart<X, Y>(title: &str, lines: &[Line<'_>], x: X, y: Y, axes: &Axes<'_>) -> anyhow::Result<String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    draw(title, lines, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 14))
            .light_line_style(LIGHT)
            .x_desc(axes.x_desc)
            .y_desc(axes.y_desc)
            .x_label_formatter(axes.x_label)
            .y_label_formatter(axes.y_label)
            .draw()
            .map_err(plot_error)?;
        for (index, line) in lines.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_error)
    })
}

fn max_of(lines: &[Line<'_>], value: impl Fn(&(f64, f64)) -> &f64) -> f64 {
    lines.iter().flat_map(|line| line.points.iter().map(&value)).copied().fold(0.0, f64::max)
}

type Root<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws a chart on a white SVG page and returns the SVG text.
fn draw(
    title: &str,
    lines: &[Line<'_>],
    chart: impl FnOnce(&Root<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        if lines.iter().all(|line| line.points.is_empty()) {
            root.draw(&Text::new(format!("{title}: nothing completed"), (20, 20), ("sans-serif", 20)))
                .map_err(plot_error)?;
        } else {
            chart(&root)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectrum_gives_each_nine_the_same_width() {
        for (quantile, label) in
            [(0.0, "0 %"), (0.5, "50 %"), (0.9, "90 %"), (0.99, "99 %"), (0.999, "99.9 %")]
        {
            let x = spectrum_x(quantile);
            assert_eq!(percentile_label(&x), label, "{quantile}");
        }
    }

    #[test]
    fn both_plots_draw_each_phase_and_its_name() {
        let lines = [
            Line { name: "pay", points: vec![(1.0, 2.0), (10.0, 3.0), (100.0, 9.0)] },
            Line { name: "complete payments", points: vec![(1.0, 20.0), (10.0, 30.0), (100.0, 90.0)] },
        ];
        for svg in [latency_svg("latency", &lines).unwrap(), throughput_svg("throughput", &lines).unwrap()] {
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(
                svg.contains("complete payments") && svg.lines().any(|line| line.trim() == "pay"),
                "{svg}"
            );
            assert_eq!(
                svg.matches(r#"stroke-width="2" points"#).count(),
                4,
                "a line and a legend mark per phase: {svg}"
            );
        }
        let empty = latency_svg("latency", &[Line { name: "pay", points: vec![] }]).unwrap();
        assert!(empty.contains("nothing completed"), "{empty}");
    }
}
