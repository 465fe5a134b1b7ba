//! Line charts of series as PNG files (plotters' bitmap backend). The font is compiled in
//! (DejaVu Sans, see `assets/DejaVu-LICENSE.txt`), so no system fonts or fontconfig are needed.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::MetricsError;
use crate::series::{downsample, Point};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    /// The legend entry, such as the run name.
    pub label: String,
    /// Its points in step order.
    pub points: &'a [Point],
}

/// Makes the embedded font known to plotters (once per process).
fn register() -> Result<(), MetricsError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(MetricsError::Plot(
            "the embedded font cannot be read".into(),
        ))
    }
}

fn plot_error(e: impl std::fmt::Display) -> MetricsError {
    MetricsError::Plot(e.to_string())
}

/// Draws `curves` (value over step) into a `width` x `height` PNG at `path`, titled `title`.
/// Non-finite values are left out; each curve is thinned to about two points per pixel.
pub fn plot_png(
    path: &Path,
    title: &str,
    curves: &[Curve],
    (width, height): (u32, u32),
) -> Result<(), MetricsError> {
    register()?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|c| {
            let xy = downsample(c.points, 2 * width as usize)
                .into_iter()
                .filter(|p| p.value.is_finite())
                .map(|p| (p.step as f64, p.value))
                .collect();
            (c.label.clone(), xy)
        })
        .collect();
    let (xs, ys) = bounds(curves.iter().flat_map(|(_, xy)| xy.iter().copied()));
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FAMILY, 14))
        .draw()
        .map_err(plot_error)?;
    for (i, (label, xy)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(xy, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

/// The x and y ranges of the points, widened when empty or flat.
fn bounds(points: impl Iterator<Item = (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let widen = |(lo, hi): (f64, f64)| {
        if lo > hi {
            (0.0, 1.0)
        } else if lo == hi {
            (lo - 0.5, hi + 0.5)
        } else {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        }
    };
    let ((x0, x1), (y0, y1)) = points.fold(
        (
            (f64::INFINITY, f64::NEG_INFINITY),
            (f64::INFINITY, f64::NEG_INFINITY),
        ),
        |((x0, x1), (y0, y1)), (x, y)| ((x0.min(x), x1.max(x)), (y0.min(y), y1.max(y))),
    );
    (widen((x0, x1)), widen((y0, y1)))
}
