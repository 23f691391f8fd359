//! Text shown to people in a fixed space: labels cut to a table column (the CLI) or to a
//! chart legend (the dashboard).

/// `s` cut to at most `n` characters. With a `mark` (the dashboard's legends use '…', as
/// nothing else on a chart names the series in full), a cut label ends in it; without one
/// (the CLI's tables, whose columns are exactly `n` wide and whose long policy labels are
/// listed in full above the table) it is cut bare.
pub fn truncate(s: &str, n: usize, mark: Option<char>) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    match mark {
        Some(m) => s.chars().take(n.saturating_sub(1)).chain([m]).collect(),
        None => s.chars().take(n).collect(),
    }
}
