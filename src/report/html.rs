//! The report as one self-contained HTML page.
//!
//! The page is read by brand-protection analysts and regulators, often offline or attached to
//! a case file, so it loads nothing from anywhere: no scripts, fonts, stylesheets or images
//! beyond what is inline, and a Content-Security-Policy that forbids fetching any. Every
//! piece of text that came from data (brand, category, currency, metric names) is escaped.

use std::fmt::Write as _;

use super::charts::{curve_chart, group_chart, reliability_chart, score_chart, CurveKind};
use super::tables::{estimators_table, groups_table, key_figures_table};
use super::text::{escape, percent, percent_number, thousands};
use super::{ReportError, ReportInput};
use crate::eval::prevalence::{GroupBy, GroupSummary, PrevalenceReport, PrevalenceSummary};

/// Groups shown per chart; the table below the charts lists all of them.
pub const TOP_GROUPS: usize = 15;

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
            p.method.label()
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
    html.push_str(&page_head(input));
    html.push_str(&summary_section(report));
    if let Some(audit) = &input.audit {
        html.push_str(&super::audit::audit_section(audit));
    }
    html.push_str(&prevalence_charts_section(report)?);
    html.push_str(&scores_section(input)?);
    if input.has_evaluation() {
        html.push_str(&evaluation_section(input)?);
    }
    html.push_str(&groups_table(report));
    html.push_str(&footer(report));
    Ok(html)
}

// `write!` into a String cannot fail; the results below are discarded for that reason.

/// Doctype, head with the style and security policy, and the page header.
fn page_head(input: &ReportInput) -> String {
    let title = escape(&input.title);
    format!(
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
    )
}

/// Headline, what it means, why this method, and every estimator.
fn summary_section(report: &PrevalenceReport) -> String {
    let mut html = String::from("<section id=\"summary\">\n");
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
        html.push_str(&estimators_table(estimators, report.headline_method));
    }
    html.push_str("</section>\n");
    html
}

/// One chart each for categories and brands, the largest groups first.
fn prevalence_charts_section(report: &PrevalenceReport) -> Result<String, ReportError> {
    let mut html =
        String::from("<section id=\"prevalence-charts\">\n<h2>By category and brand</h2>\n");
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
    Ok(html)
}

fn scores_section(input: &ReportInput) -> Result<String, ReportError> {
    let mut html = String::from("<section id=\"scores\">\n<h2>Score distribution</h2>\n");
    html.push_str("<figure id=\"chart-scores\" class=\"chart wide\">\n");
    html.push_str(&score_chart(&input.scores, input.thresholds.as_ref())?);
    html.push_str(
        "<figcaption>Listings by calibrated probability of being counterfeit.</figcaption>\n\
         </figure>\n</section>\n",
    );
    Ok(html)
}

/// ROC, precision–recall and reliability charts, and the key figures, for labelled samples.
fn evaluation_section(input: &ReportInput) -> Result<String, ReportError> {
    let mut html = String::from(
        "<section id=\"evaluation\">\n<h2>Evaluation on labelled listings</h2>\n\
         <div class=\"grid\">\n",
    );
    for (kind, curve) in [
        (CurveKind::Roc, &input.roc),
        (CurveKind::PrecisionRecall, &input.pr),
    ] {
        if let Some(curve) = curve {
            let _ = writeln!(html, "<figure id=\"{}\" class=\"chart\">", kind.id());
            html.push_str(&curve_chart(kind, curve)?);
            html.push_str("</figure>\n");
        }
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
    if let Some(figures) = &input.metrics {
        html.push_str(&key_figures_table(figures));
    }
    html.push_str("</section>\n");
    Ok(html)
}

fn footer(report: &PrevalenceReport) -> String {
    format!(
        "<footer>\n<p class=\"note\">Intervals are {:.0}% bootstrap intervals that redraw \
         both the sample and the classifier's error rates measured on validation data. \
         Estimates assume that counterfeit and genuine listings look the same here as in \
         validation; only their mix may differ.</p>\n</footer>\n</body>\n</html>\n",
        report.confidence_level * 100.0
    )
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
.warning { background: #fff4e5; border-left: 5px solid #b35c00; padding: 8px 12px; }
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
    use super::super::testutil::{input, THRESHOLDS};
    use super::super::ScoreHistogram;
    use super::*;
    use crate::eval::prevalence::{Method, QuantificationStats};

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
        // Metric names are constants now (the key figures are typed), so only data is checked.
        assert!(!html.contains("<sample>"));
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Co&quot;")
        );
        assert!(html.contains("Weekly &lt;sample&gt; &amp; audit"));
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
    fn headline_names_the_method_by_its_label() {
        let input = input(true);
        let method = input.prevalence.overall.prevalence.as_ref().unwrap().method;
        let headline = headline_sentence(&input.prevalence);
        assert!(headline.ends_with(&format!("method: {}.", method.label())));
        assert!(headline.contains(Method::Em.label()) || method != Method::Em);
    }
}
