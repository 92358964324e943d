//! Renders a prevalence report as one self-contained HTML page (charts drawn by plotters as
//! inline SVG) or as JSON, and writes either atomically.
//!
//! The page is read by brand-protection analysts and regulators, often offline or attached to
//! a case file, so it loads nothing from anywhere: no scripts, fonts, stylesheets or images
//! beyond what is inline, and a Content-Security-Policy that forbids fetching any. Every
//! piece of text that came from data (brand, category, currency, metric names) is escaped.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::decision::Thresholds;
use crate::prevalence::{GroupBy, GroupSummary, Method, PrevalenceReport, PrevalenceSummary};

/// Groups shown per chart; the table below the charts lists all of them.
pub const TOP_GROUPS: usize = 15;

const CHART_WIDTH: u32 = 860;
const SMALL_CHART: (u32, u32) = (420, 380);
const FONT: &str = "sans-serif";
const FLAGGED_COLOR: RGBColor = RGBColor(0xf4, 0xb3, 0x6b);
const ESTIMATE_COLOR: RGBColor = RGBColor(0x1f, 0x4e, 0x8c);
const SCORE_COLOR: RGBColor = RGBColor(0x6b, 0x8e, 0xb8);
const REVIEW_COLOR: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const BLOCK_COLOR: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const GUIDE_COLOR: RGBColor = RGBColor(0xb0, 0xb0, 0xb0);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot write a report to {}: extension {extension} is not supported \
         (use .html, .htm or .json)",
        .path.display()
    )]
    UnsupportedExtension { path: PathBuf, extension: String },
    #[error("drawing chart {chart}: {message}")]
    Chart {
        chart: &'static str,
        message: String,
    },
    #[error("serialising report JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing report {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A ROC or precision-recall curve and the area under it (AUC or average precision).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub points: Vec<(f64, f64)>,
    pub area: f64,
}

/// Listing counts in equal-width probability bins over [0, 1].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScoreHistogram {
    pub counts: Vec<u64>,
}

impl ScoreHistogram {
    /// Bins finite probabilities (clamped to [0, 1]; 1.0 lands in the last bin).
    pub fn from_probabilities(probs: &[f32], bins: usize) -> Self {
        let bins = bins.max(1);
        let mut counts = vec![0u64; bins];
        for &p in probs.iter().filter(|p| p.is_finite()) {
            let x = f64::from(p.clamp(0.0, 1.0)) * bins as f64;
            // Clamped to the last index before the cast, so it can neither wrap nor overflow.
            counts[x.floor().clamp(0.0, (bins - 1) as f64) as usize] += 1;
        }
        ScoreHistogram { counts }
    }
}

/// Everything the page shows. The labelled-evaluation parts are optional: a sample without
/// labels gets no ROC, PR or reliability chart rather than empty ones.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub title: String,
    pub model_name: String,
    pub model_version: String,
    pub generated_at: String,
    pub prevalence: PrevalenceReport,
    pub scores: ScoreHistogram,
    /// Drawn on the score histogram when given.
    pub thresholds: Option<Thresholds>,
    pub roc: Option<Curve>,
    pub pr: Option<Curve>,
    /// `(mean predicted probability, observed counterfeit rate, listings)` per bin.
    pub reliability: Option<Vec<(f64, f64, u64)>>,
    /// Key figures shown as a table: an object's entries become rows.
    pub metrics: Option<serde_json::Value>,
}

/// What [`write_report`] writes, chosen by the file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

impl ReportFormat {
    /// `.html`/`.htm` → HTML, `.json` → JSON (case-insensitive); anything else is an error
    /// naming the extension, so a CLI can reject a bad path before doing any work.
    pub fn from_path(path: &Path) -> Result<Self, ReportError> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("html") | Some("htm") => Ok(ReportFormat::Html),
            Some("json") => Ok(ReportFormat::Json),
            other => Err(ReportError::UnsupportedExtension {
                path: path.to_path_buf(),
                extension: other.map_or_else(|| "(none)".to_string(), |e| format!(".{e}")),
            }),
        }
    }
}

/// Writes the HTML page or the [`PrevalenceReport`] JSON, by extension. The file appears
/// whole or not at all: it is written to a temporary file in the same directory and renamed
/// over `path`, so a reader never sees half a report and a failed run leaves the old one.
pub fn write_report(path: impl AsRef<Path>, input: &ReportInput) -> Result<(), ReportError> {
    let path = path.as_ref();
    let contents = match ReportFormat::from_path(path)? {
        ReportFormat::Html => render_html(input)?,
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&input.prevalence)?;
            json.push('\n');
            json
        }
    };
    write_atomically(path, contents.as_bytes())
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let io_err = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".knockoff-report-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err)?;
    tmp.write_all(contents).map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    #[cfg(unix)]
    {
        // Temp files are created owner-only; a report is meant to be shared like any file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(io_err)?;
    }
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// The one sentence a reader should take away, as plain text.
pub fn headline_sentence(report: &PrevalenceReport) -> String {
    let overall = &report.overall;
    match &overall.prevalence {
        Some(p) => format!(
            "Estimated {} of {} listings are counterfeit (95% CI {}–{}), method: {}.",
            percent(p.estimate),
            thousands(overall.listings),
            percent_number(p.ci_low),
            percent(p.ci_high),
            method_label(&p.method)
        ),
        None if overall.listings == 0 => {
            "No listings were scored, so there is no prevalence estimate.".to_string()
        }
        None => format!(
            "No prevalence estimate for these {} listings.",
            thousands(overall.listings)
        ),
    }
}

/// Renders the full page. Fails only if plotters fails to draw a chart.
pub fn render_html(input: &ReportInput) -> Result<String, ReportError> {
    let report = &input.prevalence;
    let mut html = String::with_capacity(64 * 1024);
    let title = escape(&input.title);
    // `write!` into a String cannot fail; the results are discarded for that reason.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n<title>{title}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<header>\n<h1 id=\"title\">{title}</h1>\n\
         <p class=\"meta\" id=\"model\">Model <strong>{}</strong> version {} · generated {}</p>\n\
         </header>\n",
        escape(&input.model_name),
        escape(&input.model_version),
        escape(&input.generated_at),
    );

    html.push_str("<section id=\"summary\">\n");
    let _ = writeln!(
        html,
        "<p id=\"headline\" class=\"headline\">{}</p>",
        escape(&headline_sentence(report))
    );
    let _ = writeln!(
        html,
        "<p id=\"explanation\">{}</p>",
        escape(&explanation(&report.overall))
    );
    let _ = writeln!(
        html,
        "<p id=\"method\" class=\"note\"><strong>Why this method:</strong> {}</p>",
        escape(&report.headline_method_reason)
    );
    if let Some(estimators) = &report.overall.estimators {
        html.push_str(
            "<table id=\"estimators-table\">\n<caption>All estimators on the whole sample \
             (95% intervals)</caption>\n<thead><tr><th>Estimator</th><th>Estimate</th>\
             <th>95% CI</th></tr></thead>\n<tbody>\n",
        );
        for method in Method::ALL {
            let i = estimators.get(method);
            let headline = method.as_str() == report.headline_method;
            let _ = writeln!(
                html,
                "<tr{}><td>{}{}</td><td>{}</td><td>{}–{}</td></tr>",
                if headline {
                    " class=\"headline-row\""
                } else {
                    ""
                },
                escape(method.label()),
                if headline { " (headline)" } else { "" },
                percent(i.estimate),
                percent_number(i.ci_low),
                percent(i.ci_high)
            );
        }
        html.push_str("</tbody>\n</table>\n");
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"prevalence-charts\">\n<h2>By category and brand</h2>\n");
    for (by, id, noun) in [
        (GroupBy::Category, "chart-category", "category"),
        (GroupBy::Brand, "chart-brand", "brand"),
    ] {
        let groups: Vec<&GroupSummary> = report
            .groups
            .iter()
            .filter(|g| g.by == by)
            .take(TOP_GROUPS)
            .collect();
        let _ = writeln!(html, "<figure id=\"{id}\" class=\"chart wide\">");
        if groups.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"empty\">No {noun} information to chart.</p>"
            );
        } else {
            let caption = format!(
                "Counterfeit share by {noun} (top {} by listings)",
                groups.len()
            );
            html.push_str(&group_chart(id, &caption, &groups)?);
            let _ = writeln!(
                html,
                "<figcaption>Bars: share flagged for review or block. Dots with whiskers: \
                 estimated counterfeit share with its 95% interval. Groups with fewer than {} \
                 listings are marked and get no estimate.</figcaption>",
                report.min_group_rows
            );
        }
        html.push_str("</figure>\n");
    }
    html.push_str("</section>\n");

    html.push_str("<section id=\"scores\">\n<h2>Score distribution</h2>\n");
    html.push_str("<figure id=\"chart-scores\" class=\"chart wide\">\n");
    html.push_str(&score_chart(&input.scores, input.thresholds.as_ref())?);
    html.push_str(
        "<figcaption>Listings by calibrated probability of being counterfeit.</figcaption>\n\
         </figure>\n</section>\n",
    );

    let has_evaluation = input.roc.is_some()
        || input.pr.is_some()
        || input.reliability.is_some()
        || input.metrics.is_some();
    if has_evaluation {
        html.push_str(
            "<section id=\"evaluation\">\n<h2>Evaluation on labelled listings</h2>\n\
             <div class=\"grid\">\n",
        );
        if let Some(roc) = &input.roc {
            let caption = format!("ROC curve (AUC {:.3})", roc.area);
            html.push_str("<figure id=\"chart-roc\" class=\"chart\">\n");
            html.push_str(&curve_chart(
                "chart-roc",
                &caption,
                &roc.points,
                ("false positive rate", "true positive rate"),
                true,
            )?);
            html.push_str("</figure>\n");
        }
        if let Some(pr) = &input.pr {
            let caption = format!("Precision–recall (AP {:.3})", pr.area);
            html.push_str("<figure id=\"chart-pr\" class=\"chart\">\n");
            html.push_str(&curve_chart(
                "chart-pr",
                &caption,
                &pr.points,
                ("recall", "precision"),
                false,
            )?);
            html.push_str("</figure>\n");
        }
        if let Some(bins) = &input.reliability {
            html.push_str("<figure id=\"chart-reliability\" class=\"chart\">\n");
            html.push_str(&reliability_chart(bins)?);
            html.push_str(
                "<figcaption>Points on the diagonal mean the probabilities can be taken at \
                 face value; larger dots hold more listings.</figcaption>\n</figure>\n",
            );
        }
        html.push_str("</div>\n");
        if let Some(metrics) = &input.metrics {
            html.push_str(&metrics_table(metrics));
        }
        html.push_str("</section>\n");
    }

    html.push_str(&groups_table(report));
    let _ = write!(
        html,
        "<footer>\n<p class=\"note\">Intervals are {:.0}% bootstrap intervals that redraw \
         both the sample and the classifier's error rates measured on validation data. \
         Estimates assume that counterfeit and genuine listings look the same here as in \
         validation; only their mix may differ.</p>\n</footer>\n</body>\n</html>\n",
        report.confidence_level * 100.0
    );
    Ok(html)
}

fn explanation(overall: &PrevalenceSummary) -> String {
    let Some(share) = overall.share_flagged else {
        return "There is nothing to estimate from an empty sample.".to_string();
    };
    let mut text = format!(
        "{} of listings ({} blocked, {} sent to review) were flagged. That is not the \
         same as the share that are counterfeit: the classifier misses some counterfeits and \
         flags some genuine listings, and how those two errors balance depends on how common \
         counterfeits are in this particular sample. The estimate corrects for both, using \
         error rates measured on held-out labelled listings, and its interval covers the \
         uncertainty from the size of this sample and from the size of that labelled set.",
        percent(share),
        thousands(overall.flagged.block),
        thousands(overall.flagged.review)
    );
    if let (Some(labeled), Some(true_share)) = (overall.labeled, overall.true_share) {
        let _ = write!(
            text,
            " {} of these listings carry a label; {} of those are counterfeit (a check on the \
             estimate, not an input to it).",
            thousands(labeled),
            percent(true_share)
        );
    }
    text
}

fn groups_table(report: &PrevalenceReport) -> String {
    let any_labels = report.groups.iter().any(|g| g.summary.true_share.is_some());
    let mut html = String::from(
        "<section id=\"groups\">\n<h2>All groups</h2>\n<table id=\"groups-table\">\n<thead><tr>\
         <th>By</th><th>Value</th><th>Listings</th><th>Blocked</th><th>Review</th>\
         <th>Share flagged</th><th>Estimated counterfeit share (95% CI)</th>",
    );
    if any_labels {
        html.push_str("<th>Labelled share</th>");
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for group in &report.groups {
        let s = &group.summary;
        let estimate = match &s.prevalence {
            Some(p) => format!(
                "{} ({}–{})",
                percent(p.estimate),
                percent_number(p.ci_low),
                percent(p.ci_high)
            ),
            None => format!(
                "<span class=\"too-small\">too few listings (fewer than {})</span>",
                report.min_group_rows
            ),
        };
        let _ =
            write!(
            html,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            if s.too_small { " class=\"too-small\"" } else { "" },
            group.by.as_str(),
            escape(&group.value),
            thousands(s.listings),
            thousands(s.flagged.block),
            thousands(s.flagged.review),
            s.share_flagged.map_or_else(String::new, percent),
            estimate
        );
        if any_labels {
            let _ = write!(
                html,
                "<td>{}</td>",
                s.true_share.map_or_else(String::new, percent)
            );
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

fn metrics_table(metrics: &serde_json::Value) -> String {
    let mut html = String::from("<table id=\"metrics-table\">\n<caption>Key figures</caption>\n");
    match metrics {
        serde_json::Value::Object(map) => {
            html.push_str("<tbody>\n");
            for (key, value) in map {
                let shown = match value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => match n.as_f64() {
                        Some(x) if n.is_f64() => format!("{x:.4}"),
                        _ => n.to_string(),
                    },
                    other => other.to_string(),
                };
                let _ = writeln!(
                    html,
                    "<tr><th>{}</th><td>{}</td></tr>",
                    escape(key),
                    escape(&shown)
                );
            }
            html.push_str("</tbody>\n");
        }
        other => {
            let pretty = serde_json::to_string_pretty(other).unwrap_or_default();
            let _ = writeln!(
                html,
                "<tbody><tr><td><pre>{}</pre></td></tr></tbody>",
                escape(&pretty)
            );
        }
    }
    html.push_str("</table>\n");
    html
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

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
fn group_chart(
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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(GUIDE_COLOR)
            .label_font((FONT, 13))
            .draw()?;
        Ok(())
    })
}

fn score_chart(
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
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperMiddle)
                .background_style(WHITE.mix(0.9))
                .border_style(GUIDE_COLOR)
                .label_font((FONT, 13))
                .draw()?;
        }
        Ok(())
    })
}

fn unit_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
        .collect()
}

/// A curve on the unit square; ROC also gets the chance diagonal for reference.
fn curve_chart(
    id: &'static str,
    caption: &str,
    points: &[(f64, f64)],
    (x_desc, y_desc): (&str, &str),
    diagonal: bool,
) -> Result<String, ReportError> {
    let points = unit_points(points);
    render_svg(id, SMALL_CHART, |root| {
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
        if diagonal {
            chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GUIDE_COLOR))?;
        }
        chart.draw_series(LineSeries::new(points, ESTIMATE_COLOR.stroke_width(2)))?;
        Ok(())
    })
}

fn reliability_chart(bins: &[(f64, f64, u64)]) -> Result<String, ReportError> {
    let points: Vec<(f64, f64, u64)> = bins
        .iter()
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .map(|&(x, y, n)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0), n))
        .collect();
    let max_count = points.iter().map(|p| p.2).max().unwrap_or(1).max(1) as f64;
    render_svg("chart-reliability", SMALL_CHART, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Reliability (calibration)", (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("mean predicted probability")
            .y_desc("observed counterfeit rate")
            .label_style((FONT, 12))
            .draw()?;
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

fn method_label(code: &str) -> &str {
    match Method::from_code(code) {
        Some(method) => method.label(),
        None => code,
    }
}

/// "12.3%".
fn percent(share: f64) -> String {
    format!("{}%", percent_number(share))
}

/// "12.3", for the left end of a range whose right end carries the % sign.
fn percent_number(share: f64) -> String {
    format!("{:.1}", share * 100.0)
}

/// 20684 → "20,684".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
  color: #1d2330; background: #f6f7f9; margin: 0 auto; max-width: 960px; padding: 24px;
  line-height: 1.5; }
header { border-bottom: 2px solid #1f4e8c; margin-bottom: 16px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 28px 0 8px; }
.meta, .note, figcaption { color: #555d6b; font-size: 0.9rem; }
.headline { font-size: 1.25rem; font-weight: 600; background: #fff; border-left: 5px solid #1f4e8c;
  padding: 12px 16px; }
section { margin-bottom: 24px; }
figure { margin: 12px 0; background: #fff; padding: 8px; border: 1px solid #dde1e7; }
figure svg { max-width: 100%; height: auto; display: block; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
.grid figure { flex: 1 1 420px; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 12px 0;
  font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 6px 0; }
th, td { border: 1px solid #dde1e7; padding: 4px 8px; text-align: left; }
thead th { background: #eef1f5; }
tr.too-small td, span.too-small { color: #8a8f99; font-style: italic; }
tr.headline-row td { font-weight: 600; }
.empty { color: #8a8f99; }
pre { white-space: pre-wrap; margin: 0; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prevalence::{QuantificationStats, ScoredRow};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const THRESHOLDS: Thresholds = Thresholds {
        review: 0.5,
        block: 0.9,
    };
    const EVIL: &str = "<script>alert('x')</script> & \"Co\"";

    /// A probability that looks like a calibrated classifier's output for that class.
    fn score(rng: &mut StdRng, positive: bool) -> f32 {
        let u: f64 = rng.random();
        let x = if positive { 0.4 + 0.6 * u } else { 0.6 * u * u };
        x as f32
    }

    fn prevalence_report(labelled: bool) -> (PrevalenceReport, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(5);
        let (val_probs, val_labels): (Vec<f32>, Vec<bool>) = (0..2_000)
            .map(|_| {
                let y = rng.random::<f64>() < 0.3;
                (score(&mut rng, y), y)
            })
            .unzip();
        let stats = QuantificationStats::from_validation(&val_probs, &val_labels, &THRESHOLDS);
        let brands = ["Acme", EVIL, "Globex", "Tiny"];
        let rows: Vec<ScoredRow> = (0..400)
            .map(|i| {
                let y = rng.random::<f64>() < 0.2;
                let p = score(&mut rng, y);
                ScoredRow {
                    probability: p,
                    decision: THRESHOLDS.decide(p),
                    brand: Some(brands[if i == 0 { 3 } else { i % 3 }].to_string()),
                    category: Some(if i % 2 == 0 { "bags" } else { "watches" }.to_string()),
                    currency: None,
                    label: labelled.then_some(y),
                }
            })
            .collect();
        let probs = rows.iter().map(|r| r.probability).collect();
        (PrevalenceReport::build(&rows, &stats, 10), probs)
    }

    fn input(labelled: bool) -> ReportInput {
        let (prevalence, probs) = prevalence_report(labelled);
        let roc = vec![(0.0, 0.0), (0.1, 0.7), (0.3, 0.9), (1.0, 1.0)];
        let pr = vec![(0.0, 1.0), (0.5, 0.9), (1.0, 0.3)];
        ReportInput {
            title: "Weekly <sample> & audit".to_string(),
            model_name: "knockoff".to_string(),
            model_version: "1.2.3".to_string(),
            generated_at: "2026-01-01T00:00:00Z".to_string(),
            prevalence,
            scores: ScoreHistogram::from_probabilities(&probs, 20),
            thresholds: Some(THRESHOLDS),
            roc: labelled.then_some(Curve {
                points: roc,
                area: 0.91,
            }),
            pr: labelled.then_some(Curve {
                points: pr,
                area: 0.8,
            }),
            reliability: labelled.then(|| vec![(0.1, 0.08, 200), (0.5, 0.55, 40), (0.9, 0.85, 60)]),
            metrics: labelled.then(|| serde_json::json!({"auc": 0.91, "<b>n</b>": 400})),
        }
    }

    #[test]
    fn html_has_headline_and_every_chart_when_labelled() {
        let input = input(true);
        let html = render_html(&input).unwrap();
        let headline = headline_sentence(&input.prevalence);
        assert!(headline.starts_with("Estimated "), "{headline}");
        assert!(headline.contains("of 400 listings are counterfeit (95% CI "));
        assert!(html.contains(&format!(
            "<p id=\"headline\" class=\"headline\">{headline}</p>"
        )));
        for id in [
            "headline",
            "explanation",
            "method",
            "estimators-table",
            "chart-category",
            "chart-brand",
            "chart-scores",
            "chart-roc",
            "chart-pr",
            "chart-reliability",
            "metrics-table",
            "groups-table",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "missing {id}");
        }
        // Each chart is real plotters output, inline.
        assert!(html.matches("<svg").count() >= 6);
        assert!(html.contains("AUC 0.910"));
        assert!(html.contains("too few"), "the 1-row brand must be marked");
    }

    #[test]
    fn html_without_labels_omits_evaluation_charts() {
        let html = render_html(&input(false)).unwrap();
        for id in [
            "chart-roc",
            "chart-pr",
            "chart-reliability",
            "metrics-table",
        ] {
            assert!(!html.contains(&format!("id=\"{id}\"")), "unexpected {id}");
        }
        for id in ["headline", "chart-category", "chart-brand", "chart-scores"] {
            assert!(html.contains(&format!("id=\"{id}\"")), "missing {id}");
        }
    }

    #[test]
    fn user_text_is_escaped_everywhere() {
        let html = render_html(&input(true)).unwrap();
        assert!(
            !html.contains("<script"),
            "raw brand name leaked into the page"
        );
        assert!(!html.contains("<sample>") && !html.contains("<b>n</b>"));
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;")
        );
        assert!(html.contains("Weekly &lt;sample&gt; &amp; audit"));
        assert!(html.contains("&lt;b&gt;n&lt;/b&gt;"));
    }

    #[test]
    fn page_loads_nothing_from_outside() {
        let html = render_html(&input(true)).unwrap();
        for needle in [
            "<script", "<link", "src=", "href=", "@import", "url(", "<img",
        ] {
            assert!(!html.contains(needle), "found {needle}");
        }
        assert!(html.contains("Content-Security-Policy"));
    }

    #[test]
    fn empty_report_renders() {
        let stats = QuantificationStats::from_validation(&[0.1, 0.9], &[false, true], &THRESHOLDS);
        let prevalence = PrevalenceReport::build(&[], &stats, 10);
        let input = ReportInput {
            prevalence,
            scores: ScoreHistogram::default(),
            thresholds: None,
            ..input(false)
        };
        let html = render_html(&input).unwrap();
        assert!(html.contains("No listings were scored"));
        assert!(html.contains("id=\"chart-category\"") && html.contains("id=\"chart-scores\""));
    }

    #[test]
    fn json_report_has_the_agreed_shape_and_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prevalence.JSON");
        let input = input(true);
        write_report(&path, &input).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(json["headline_method_reason"].is_string());
        let overall = &json["overall"];
        assert_eq!(overall["listings"], 400);
        assert!(overall["flagged"]["block"].is_u64() && overall["flagged"]["review"].is_u64());
        for key in ["estimate", "ci_low", "ci_high", "method"] {
            assert!(
                !overall["prevalence"][key].is_null(),
                "overall.prevalence.{key}"
            );
        }
        let groups = json["groups"].as_array().unwrap();
        let tiny = groups.iter().find(|g| g["value"] == "Tiny").unwrap();
        assert_eq!(
            (tiny["by"].as_str(), tiny["listings"].as_u64()),
            (Some("brand"), Some(1))
        );
        assert!(tiny["prevalence"].is_null() && tiny["too_small"] == true);
        assert!(groups
            .iter()
            .any(|g| g["by"] == "currency" && g["value"] == "(none)"));

        // Overwrite with HTML next to it: no temporary files are left behind.
        write_report(dir.path().join("report.htm"), &input).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["prevalence.JSON", "report.htm"]);
    }

    #[test]
    fn unknown_extension_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = input(false);
        let err = write_report(dir.path().join("report.pdf"), &input).unwrap_err();
        assert!(matches!(err, ReportError::UnsupportedExtension { .. }));
        assert!(err.to_string().contains(".pdf"), "{err}");
        let err = write_report(dir.path().join("report"), &input).unwrap_err();
        assert!(err.to_string().contains("(none)"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(
            ReportFormat::from_path(Path::new("a.HTML")).unwrap(),
            ReportFormat::Html
        );
    }

    #[test]
    #[ignore = "writes a preview page: cargo test --lib report -- --ignored"]
    fn write_preview_page() {
        let path = std::env::temp_dir().join("knockoff-report-preview.html");
        write_report(&path, &input(true)).unwrap();
        println!("{}", path.display());
    }

    #[test]
    fn helpers_format_and_bin() {
        assert_eq!(thousands(20_684), "20,684");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        let h = ScoreHistogram::from_probabilities(&[0.0, 0.05, 0.5, 1.0, f32::NAN, 7.0], 10);
        assert_eq!(h.counts, [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(method_label("em"), Method::Em.label());
        assert_eq!(method_label("custom"), "custom");
    }
}
