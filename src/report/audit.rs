//! The audit section of the page: the audited estimate beside the model-based one, the
//! warning when they disagree, and the strata the sample was drawn from.

use std::fmt::Write as _;

use super::text::{escape, percent, percent_number, thousands};
use crate::eval::audit::AuditReport;

pub(super) fn audit_section(audit: &AuditReport) -> String {
    let mut html = String::from("<section id=\"audit\">\n<h2>Audited sample</h2>\n");
    if let Some(warning) = &audit.warning {
        let _ = writeln!(
            html,
            "<p id=\"audit-warning\" class=\"warning\"><strong>Warning:</strong> {}</p>",
            escape(warning)
        );
    }
    let o = &audit.overall;
    let _ = writeln!(
        html,
        "<p id=\"audit-estimate\">Audit: {} (95% CI {}–{}) from {} labelled listings \
         ({} drawn, {} not labelled yet; worth a simple random sample of {:.0}).{}</p>",
        percent(o.estimate),
        percent_number(o.ci_low),
        percent(o.ci_high),
        thousands(audit.labelled),
        thousands(audit.rows),
        thousands(audit.unlabelled),
        o.effective_n,
        audit
            .model_based
            .as_ref()
            .map_or(String::new(), |m| format!(
                " Model-based: {} ({}–{}, {}).",
                percent(m.estimate),
                percent_number(m.ci_low),
                percent(m.ci_high),
                escape(m.method.label())
            ))
    );
    html.push_str(
        "<table id=\"audit-strata\">\n<caption>Strata by score (lowest first)</caption>\n\
         <thead><tr><th>Stratum</th><th>Listings</th><th>Drawn</th><th>Labelled</th>\
         <th>Counterfeit</th></tr></thead>\n<tbody>\n",
    );
    for s in &audit.strata {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.stratum,
            thousands(s.rows),
            s.drawn,
            s.labelled,
            s.counterfeit
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}
