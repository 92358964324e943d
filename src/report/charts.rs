//! The charts of the report page, drawn by plotters as inline SVG: prevalence by group,
//! the score distribution, ROC and precision–recall curves, and the reliability diagram.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::text::thousands;
use super::{Curve, ReportError, ScoreHistogram};
use crate::decision::Thresholds;
use crate::eval::calibration::ReliabilityBin;
use crate::eval::prevalence::GroupSummary;
use crate::eval::ranking::CurvePoint;

const CHART_WIDTH: u32 = 860;
const SMALL_CHART: (u32, u32) = (420, 380);
const FONT: &str = "sans-serif";
const FLAGGED_COLOR: RGBColor = RGBColor(0xf4, 0xb3, 0x6b);
const ESTIMATE_COLOR: RGBColor = RGBColor(0x1f, 0x4e, 0x8c);
const SCORE_COLOR: RGBColor = RGBColor(0x6b, 0x8e, 0xb8);
const REVIEW_COLOR: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const BLOCK_COLOR: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const GUIDE_COLOR: RGBColor = RGBColor(0xb0, 0xb0, 0xb0);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The series legend every chart with more than one series draws, at `position`.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(GUIDE_COLOR)
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// Runs `draw` on a fresh SVG canvas and returns the SVG markup.
fn render_svg<F>(chart: &'static str, size: (u32, u32), draw: F) -> Result<String, ReportError>
where
    F: for<'a> FnOnce(&DrawingArea<SVGBackend<'a>, Shift>) -> DrawResult,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn: DrawResult = (|| {
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| ReportError::Chart {
            chart,
            message: e.to_string(),
        })?;
    }
    Ok(svg)
}

fn group_label(group: &GroupSummary) -> String {
    const MAX_CHARS: usize = 28;
    let mut name: String = group.value.chars().take(MAX_CHARS).collect();
    if group.value.chars().count() > MAX_CHARS {
        name.push('…');
    }
    let suffix = if group.summary.too_small {
        ", too few"
    } else {
        ""
    };
    format!("{name} (n={}{suffix})", thousands(group.summary.listings))
}

fn percent_formatter(max: f64) -> impl Fn(&f64) -> String {
    move |x: &f64| {
        if max < 0.1 {
            format!("{:.1}%", x * 100.0)
        } else {
            format!("{:.0}%", x * 100.0)
        }
    }
}

/// Vertical axis of a group chart: one tick per row at 0, 1, …, rows - 1, with spare room
/// above the top row so the legend stays clear of the bars. plotters' own f64 axis picks
/// "nice" ticks instead, and its key-point override loses the label formatter for f64.
struct RowAxis {
    rows: usize,
}

impl RowAxis {
    const BELOW: f64 = -0.6;

    fn top(&self) -> f64 {
        self.rows as f64 + 1.2
    }
}

impl Ranged for RowAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = (value - Self::BELOW) / (self.top() - Self::BELOW);
        // Float-to-int `as` saturates, so an out-of-range value cannot wrap.
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.rows).map(|i| i as f64).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        Self::BELOW..self.top()
    }
}

/// Horizontal chart, largest group on top: a bar for the share flagged and, just above it,
/// the estimate with its interval, so the gap between the two is what the eye compares.
pub(super) fn group_chart(
    id: &'static str,
    caption: &str,
    groups: &[&GroupSummary],
) -> Result<String, ReportError> {
    let n = groups.len();
    let labels: Vec<String> = groups.iter().map(|g| group_label(g)).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32 * 7 + 20;
    let x_max = groups
        .iter()
        .flat_map(|g| {
            [
                g.summary.share_flagged.unwrap_or(0.0),
                g.summary.prevalence.as_ref().map_or(0.0, |p| p.ci_high),
            ]
        })
        .fold(0.05, f64::max);
    let x_max = (x_max * 1.15).min(1.0);
    let height = 160 + 34 * n as u32;
    // Row i sits at y = n - 1 - i so the first (largest) group is drawn at the top.
    let row_y = move |i: usize| (n - 1 - i) as f64;
    render_svg(id, (CHART_WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(label_width.min(360))
            .build_cartesian_2d(0f64..x_max, RowAxis { rows: n })?;
        let y_label = |y: &f64| {
            let row = y.round();
            if row >= 0.0 && row < n as f64 {
                labels[n - 1 - row as usize].clone()
            } else {
                String::new()
            }
        };
        let x_label = percent_formatter(x_max);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("share of listings")
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, 13))
            .draw()?;
        chart
            .draw_series(groups.iter().enumerate().map(|(i, g)| {
                let y = row_y(i);
                let share = g.summary.share_flagged.unwrap_or(0.0);
                Rectangle::new([(0.0, y - 0.34), (share, y - 0.04)], FLAGGED_COLOR.filled())
            }))?
            .label("share flagged (review + block)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], FLAGGED_COLOR.filled()));
        let style = ESTIMATE_COLOR.filled().stroke_width(2);
        chart
            .draw_series(groups.iter().enumerate().filter_map(|(i, g)| {
                g.summary.prevalence.as_ref().map(|p| {
                    ErrorBar::new_horizontal(
                        row_y(i) + 0.2,
                        p.ci_low,
                        p.estimate,
                        p.ci_high,
                        style,
                        10,
                    )
                })
            }))?
            .label("estimated counterfeit share, 95% CI")
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (16, 0)], style)
                    + Circle::new((8, 0), 4, style)
            });
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

pub(super) fn score_chart(
    histogram: &ScoreHistogram,
    thresholds: Option<&Thresholds>,
) -> Result<String, ReportError> {
    let bins = histogram.counts.len().max(1);
    let width = 1.0 / bins as f64;
    let y_max = histogram.counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    render_svg("chart-scores", (CHART_WIDTH, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Score distribution", (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..1f64, 0f64..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("calibrated probability of counterfeit")
            .y_desc("listings")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 13))
            .draw()?;
        chart.draw_series(histogram.counts.iter().enumerate().map(|(i, &count)| {
            let x0 = i as f64 * width;
            Rectangle::new(
                [(x0, 0.0), (x0 + width, count as f64)],
                SCORE_COLOR.filled(),
            )
        }))?;
        if let Some(t) = thresholds {
            for (value, name, color) in [
                (t.review, "review threshold", REVIEW_COLOR),
                (t.block, "block threshold", BLOCK_COLOR),
            ] {
                let x = f64::from(value).clamp(0.0, 1.0);
                chart
                    .draw_series(LineSeries::new(
                        [(x, 0.0), (x, y_max)],
                        color.stroke_width(2),
                    ))?
                    .label(format!("{name} ({value:.2})"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperMiddle)?;
        }
        Ok(())
    })
}

fn unit_points(points: &[CurvePoint]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .map(|p| (p.x.clamp(0.0, 1.0), p.y.clamp(0.0, 1.0)))
        .collect()
}

/// Which evaluation curve a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CurveKind {
    Roc,
    PrecisionRecall,
}

impl CurveKind {
    /// The element id of the chart's figure and SVG.
    pub(super) fn id(self) -> &'static str {
        match self {
            CurveKind::Roc => "chart-roc",
            CurveKind::PrecisionRecall => "chart-pr",
        }
    }

    fn caption(self, area: f64) -> String {
        match self {
            CurveKind::Roc => format!("ROC curve (AUC {area:.3})"),
            CurveKind::PrecisionRecall => format!("Precision–recall (AP {area:.3})"),
        }
    }

    fn x_desc(self) -> &'static str {
        match self {
            CurveKind::Roc => "false positive rate",
            CurveKind::PrecisionRecall => "recall",
        }
    }

    fn y_desc(self) -> &'static str {
        match self {
            CurveKind::Roc => "true positive rate",
            CurveKind::PrecisionRecall => "precision",
        }
    }
}

type UnitSquare<'a> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A small chart over [0, 1]², captioned, with its axes named and its mesh drawn.
fn unit_square<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
) -> Result<UnitSquare<'a>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 12))
        .draw()?;
    Ok(chart)
}

/// A curve on the unit square; ROC also gets the chance diagonal for reference.
pub(super) fn curve_chart(kind: CurveKind, curve: &Curve) -> Result<String, ReportError> {
    let points = unit_points(&curve.points);
    let caption = kind.caption(curve.area);
    let (x_desc, y_desc) = (kind.x_desc(), kind.y_desc());
    render_svg(kind.id(), SMALL_CHART, |root| {
        let mut chart = unit_square(root, &caption, x_desc, y_desc)?;
        if kind == CurveKind::Roc {
            chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GUIDE_COLOR))?;
        }
        chart.draw_series(LineSeries::new(points, ESTIMATE_COLOR.stroke_width(2)))?;
        Ok(())
    })
}

pub(super) fn reliability_chart(bins: &[ReliabilityBin]) -> Result<String, ReportError> {
    let points: Vec<(f64, f64, usize)> = bins
        .iter()
        .filter(|b| b.mean_predicted.is_finite() && b.observed_rate.is_finite())
        .map(|b| {
            (
                b.mean_predicted.clamp(0.0, 1.0),
                b.observed_rate.clamp(0.0, 1.0),
                b.count,
            )
        })
        .collect();
    let max_count = points.iter().map(|p| p.2).max().unwrap_or(1).max(1) as f64;
    render_svg("chart-reliability", SMALL_CHART, |root| {
        let mut chart = unit_square(
            root,
            "Reliability (calibration)",
            "mean predicted probability",
            "observed counterfeit rate",
        )?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GUIDE_COLOR))?;
        chart.draw_series(LineSeries::new(
            points.iter().map(|&(x, y, _)| (x, y)),
            ESTIMATE_COLOR.stroke_width(2),
        ))?;
        chart.draw_series(points.iter().map(|&(x, y, n)| {
            // Area, not radius, proportional to the count, so big bins don't shout.
            let radius = 3.0 + 6.0 * (n as f64 / max_count).sqrt();
            Circle::new((x, y), radius.round() as u32, ESTIMATE_COLOR.filled())
        }))?;
        Ok(())
    })
}
