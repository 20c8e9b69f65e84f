//! The report's charts as data (built from the series and profiles, testable without drawing)
//! and their plotters renderings, each to PNG and/or SVG.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{ReportError, Result};

/// Which image files each chart is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartFormat {
    /// Raster PNG (shown in the markdown).
    Png,
    /// Vector SVG.
    Svg,
    /// Both; the markdown shows the PNG.
    Both,
}

impl std::str::FromStr for ChartFormat {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "png" => Ok(Self::Png),
            "svg" => Ok(Self::Svg),
            "both" => Ok(Self::Both),
            other => Err(ReportError::Options(format!("unknown chart format {other:?} (png, svg or both)"))),
        }
    }
}

impl ChartFormat {
    fn png(self) -> bool {
        matches!(self, Self::Png | Self::Both)
    }
    fn svg(self) -> bool {
        matches!(self, Self::Svg | Self::Both)
    }
    /// The extension the markdown links to.
    pub fn shown_extension(self) -> &'static str {
        if self.png() { "png" } else { "svg" }
    }
}

/// Grouped bars per partition point on a log axis (the paper's main figure: elements at each
/// point for the original, step-1 and best step-2 models).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupedBars {
    /// Title.
    pub title: String,
    /// Y axis description.
    pub y_desc: String,
    /// Point names (x categories).
    pub categories: Vec<String>,
    /// (legend, one value per category; `None` = no bar).
    pub groups: Vec<(String, Vec<Option<f64>>)>,
}

/// Stacked bars per partition point on a linear axis (a latency breakdown).
#[derive(Clone, Debug, PartialEq)]
pub struct StackedBars {
    /// Title.
    pub title: String,
    /// Y axis description.
    pub y_desc: String,
    /// Point names.
    pub categories: Vec<String>,
    /// (stage, one value per category), bottom to top.
    pub stacks: Vec<(String, Vec<f64>)>,
}

/// Lines over a log–log plane (latency against bandwidth).
#[derive(Clone, Debug, PartialEq)]
pub struct LogLines {
    /// Title.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// X values (positive).
    pub x: Vec<f64>,
    /// (legend, one y per x; `None` = infeasible there).
    pub lines: Vec<(String, Vec<Option<f64>>)>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type DrawResult = std::result::Result<(), String>;

/// Draw the series legend (upper right) and flush the drawing area: the common end of every chart.
fn legend_and_present<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(s)?;
    root.present().map_err(s)
}

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Log-axis bounds covering `values` with a margin; `(1, 10)` when there is nothing positive.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi <= 0.0 { (1.0, 10.0) } else { (lo / 2.0, hi * 2.0) }
}

/// Categories sit at x = 0, 1, …, n − 1.
fn category_axis(n: usize) -> std::ops::Range<f64> {
    -0.5f64..(n.max(1) as f64 - 0.5)
}

/// Compact tick text: 0.1, 1, 10, 1k, 10k, 1M.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Category names under the x axis, rotated to read downwards. plotters anchors rotated tick
/// labels as if unrotated (half of each label would sit above the axis), so they are drawn here,
/// anchored at their start.
fn draw_category_labels<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    categories: &[String],
    y_bottom: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from(("sans-serif", 12).into_font())
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, name) in categories.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64, y_bottom));
        root.draw_text(name, &style, (x, y + 8)).map_err(s)?;
    }
    Ok(())
}

fn draw_grouped<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &GroupedBars) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(s)?;
    let n = c.categories.len();
    let (lo, hi) = log_bounds(c.groups.iter().flat_map(|(_, v)| v.iter().flatten().copied()));
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d(category_axis(n), (lo..hi).log_scale())
        .map_err(s)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick(*v))
        .y_desc(c.y_desc.as_str())
        .draw()
        .map_err(s)?;
    draw_category_labels(root, &chart, &c.categories, lo)?;
    let k = c.groups.len().max(1);
    let width = 0.8 / k as f64;
    for (j, (name, values)) in c.groups.iter().enumerate() {
        let col = color(j);
        let offset = -0.4 + j as f64 * width;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                v.filter(|v| *v > 0.0).map(|v| {
                    Rectangle::new([(i as f64 + offset, lo), (i as f64 + offset + width * 0.92, v)], col.filled())
                })
            }))
            .map_err(s)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
    }
    legend_and_present(&mut chart, root)
}

fn draw_stacked<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &StackedBars) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(s)?;
    let n = c.categories.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| c.stacks.iter().map(|(_, v)| v.get(i).copied().unwrap_or(0.0)).filter(|v| v.is_finite()).sum())
        .collect();
    let top = totals.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.12;
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d(category_axis(n), 0f64..top)
        .map_err(s)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick(*v))
        .y_desc(c.y_desc.as_str())
        .draw()
        .map_err(s)?;
    draw_category_labels(root, &chart, &c.categories, 0.0)?;
    let mut base = vec![0.0f64; n];
    for (j, (name, values)) in c.stacks.iter().enumerate() {
        let col = color(j);
        let bars: Vec<_> = (0..n)
            .filter_map(|i| {
                let v = values.get(i).copied().unwrap_or(0.0);
                let v = if v.is_finite() { v } else { 0.0 };
                let b = base[i];
                base[i] += v;
                (v > 0.0).then(|| Rectangle::new([(i as f64 - 0.35, b), (i as f64 + 0.35, b + v)], col.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(s)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
    }
    legend_and_present(&mut chart, root)
}

fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &LogLines) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(s)?;
    let (xlo, xhi) =
        c.x.iter().copied().filter(|v| *v > 0.0).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (xlo, xhi) = if xhi > 0.0 && xlo < xhi { (xlo, xhi) } else { (0.1, 100.0) };
    let (ylo, yhi) = log_bounds(c.lines.iter().flat_map(|(_, v)| v.iter().flatten().copied()));
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((xlo..xhi).log_scale(), (ylo..yhi).log_scale())
        .map_err(s)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
        .draw()
        .map_err(s)?;
    // The first line (2-step) is drawn last so that no baseline hides it where they coincide.
    for (j, (name, ys)) in c.lines.iter().enumerate().skip(1).chain(c.lines.iter().enumerate().take(1)) {
        let col = color(j);
        let width = if j == 0 { 3 } else { 2 };
        let pts: Vec<(f64, f64)> =
            c.x.iter().zip(ys).filter_map(|(&x, y)| y.filter(|v| v.is_finite() && *v > 0.0).map(|y| (x, y))).collect();
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(width)))
            .map_err(s)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(width)));
    }
    legend_and_present(&mut chart, root)
}

/// One chart ready to draw.
#[derive(Clone, Debug, PartialEq)]
pub enum Chart {
    /// See [`GroupedBars`].
    Grouped(GroupedBars),
    /// See [`StackedBars`].
    Stacked(StackedBars),
    /// See [`LogLines`].
    Lines(LogLines),
}

fn draw_any<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult
where
    DB::ErrorType: 'static,
{
    match chart {
        Chart::Grouped(c) => draw_grouped(root, c),
        Chart::Stacked(c) => draw_stacked(root, c),
        Chart::Lines(c) => draw_lines(root, c),
    }
}

/// Draw `chart` as `DIR/STEM.png` and/or `DIR/STEM.svg` of `size` pixels; returns the files.
pub fn render(
    chart: &Chart,
    out_dir: &Path,
    stem: &str,
    format: ChartFormat,
    size: (u32, u32),
) -> Result<Vec<PathBuf>> {
    crate::font::ensure_fonts()?;
    let fail = |problem: String| ReportError::Chart { chart: stem.to_string(), problem };
    let mut files = Vec::new();
    if format.png() {
        let path = out_dir.join(format!("{stem}.png"));
        let root = BitMapBackend::new(&path, size).into_drawing_area();
        draw_any(&root, chart).map_err(fail)?;
        drop(root);
        files.push(path);
    }
    if format.svg() {
        let path = out_dir.join(format!("{stem}.svg"));
        let root = SVGBackend::new(&path, size).into_drawing_area();
        draw_any(&root, chart).map_err(fail)?;
        drop(root);
        files.push(path);
    }
    Ok(files)
}
