//! The tables of the report page: all estimators on the whole sample, the key figures of a
//! labelled sample, and every group.

use std::fmt::Write as _;

use super::text::{escape, percent, percent_number, thousands};
use super::KeyFigures;
use crate::eval::prevalence::{Estimators, Method, PrevalenceReport};

/// Every estimator on the whole sample, the headline one marked.
pub(super) fn estimators_table(estimators: &Estimators, headline: Method) -> String {
    let mut html = String::from(
        "<table id=\"estimators-table\">\n<caption>All estimators on the whole sample \
         (95% intervals)</caption>\n<thead><tr><th>Estimator</th><th>Estimate</th>\
         <th>95% CI</th></tr></thead>\n<tbody>\n",
    );
    for method in Method::ALL {
        let Some(i) = estimators.get(method) else {
            continue;
        };
        let is_headline = method == headline;
        let _ = writeln!(
            html,
            "<tr{}><td>{}{}</td><td>{}</td><td>{}–{}</td></tr>",
            if is_headline {
                " class=\"headline-row\""
            } else {
                ""
            },
            escape(method.label()),
            if is_headline { " (headline)" } else { "" },
            percent(i.estimate),
            percent_number(i.ci_low),
            percent(i.ci_high)
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

pub(super) fn groups_table(report: &PrevalenceReport) -> String {
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

/// The key figures as `(name, shown value)` rows, in the order the page has always shown
/// them (alphabetical, upper case first).
fn key_figure_rows(figures: &KeyFigures) -> [(&'static str, String); 7] {
    let metric = |value: f64| {
        if value.is_finite() {
            format!("{value:.4}")
        } else {
            "n/a".to_string()
        }
    };
    [
        ("Brier score", metric(figures.brier_score)),
        ("PR-AUC", metric(figures.pr_auc)),
        ("ROC-AUC", metric(figures.roc_auc)),
        ("counterfeit (labelled)", figures.counterfeit.to_string()),
        (
            "expected calibration error",
            metric(figures.expected_calibration_error),
        ),
        ("labelled listings", figures.labelled_listings.to_string()),
        (
            "recall at 95% precision",
            metric(figures.recall_at_95_precision),
        ),
    ]
}

pub(super) fn key_figures_table(figures: &KeyFigures) -> String {
    let mut html =
        String::from("<table id=\"metrics-table\">\n<caption>Key figures</caption>\n<tbody>\n");
    for (name, shown) in key_figure_rows(figures) {
        let _ = writeln!(html, "<tr><th>{name}</th><td>{}</td></tr>", escape(&shown));
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_figures_table_keeps_its_rows_order_and_format() {
        let figures = KeyFigures {
            labelled_listings: 20684,
            counterfeit: 3319,
            roc_auc: 0.968_4,
            pr_auc: 0.936_41,
            recall_at_95_precision: 0.881,
            expected_calibration_error: 0.002_6,
            brier_score: 0.022_8,
        };
        // The table as the page showed it when the figures travelled as a JSON object.
        let expected = "<table id=\"metrics-table\">\n<caption>Key figures</caption>\n<tbody>\n\
            <tr><th>Brier score</th><td>0.0228</td></tr>\n\
            <tr><th>PR-AUC</th><td>0.9364</td></tr>\n\
            <tr><th>ROC-AUC</th><td>0.9684</td></tr>\n\
            <tr><th>counterfeit (labelled)</th><td>3319</td></tr>\n\
            <tr><th>expected calibration error</th><td>0.0026</td></tr>\n\
            <tr><th>labelled listings</th><td>20684</td></tr>\n\
            <tr><th>recall at 95% precision</th><td>0.8810</td></tr>\n\
            </tbody>\n</table>\n";
        assert_eq!(key_figures_table(&figures), expected);
    }
}
