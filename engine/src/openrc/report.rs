//! The report of directives a conversion could not map exactly: each with its
//! unit, line, value and the reason, sorted so that the text is stable.

use std::fmt::Write;

/// How far a directive is from what the generated OpenRC files do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Nothing in the output does what the directive did.
    Unmapped,
    /// The output does something close; the reason says what differs.
    Approximated,
}

impl Severity {
    /// The word used in the report text.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unmapped => "unmapped",
            Severity::Approximated => "approximated",
        }
    }
}

/// One directive the converter could not map exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportEntry {
    /// The unit's file name.
    pub unit: String,
    /// 1-based line of the directive in the unit file; 0 for the unit as a whole.
    pub line: usize,
    /// `Section.Key` (`Service.ProtectSystem`), or `unit` for the unit as a whole.
    pub directive: String,
    /// The value as written (specifiers expanded where they could be).
    pub value: String,
    /// Unmapped or approximated.
    pub severity: Severity,
    /// What differs, and what a recipe can do about it.
    pub why: String,
}

/// Renders entries one a line, sorted: `unit:line: [severity] Directive=value: why`.
pub fn render(entries: &[ReportEntry]) -> String {
    let mut sorted: Vec<&ReportEntry> = entries.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out = String::new();
    for e in sorted {
        let _ =
            writeln!(out, "{}:{}: [{}] {}={}: {}", e.unit, e.line, e.severity.as_str(), e.directive, e.value, e.why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_sorts_by_unit_then_line() {
        let e = |unit: &str, line, why: &str| ReportEntry {
            unit: unit.into(),
            line,
            directive: "Service.X".into(),
            value: "v".into(),
            severity: Severity::Unmapped,
            why: why.into(),
        };
        let text = render(&[e("b.service", 1, "z"), e("a.service", 9, "y"), e("a.service", 2, "x")]);
        assert_eq!(
            text,
            "a.service:2: [unmapped] Service.X=v: x\na.service:9: [unmapped] Service.X=v: y\nb.service:1: [unmapped] Service.X=v: z\n"
        );
    }
}
