//! Tables: headers, rows, per-column alignment; rendered as GitHub-flavoured markdown
//! ([`fmt::Display`]) or as plain text in padded columns ([`Table::to_text`], for terminals).
//!
//! Hand-written rather than a templating crate: a table is the only structure the reports need,
//! and ~100 lines render exactly the markdown the documents already contain (no padding, one
//! `|---|` rule), so the generated files stay byte-for-byte comparable across versions.

use std::fmt;

/// How a column's cells are aligned when the markdown is rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Align {
    /// The renderer's default (`---`).
    #[default]
    Default,
    /// `:---`.
    Left,
    /// `---:`.
    Right,
    /// `:---:`.
    Center,
}

impl Align {
    fn rule(self) -> &'static str {
        match self {
            Align::Default => "---",
            Align::Left => ":---",
            Align::Right => "---:",
            Align::Center => ":---:",
        }
    }
}

/// A markdown table built row by row; [`fmt::Display`] renders it (one line per row, each ending
/// in a newline).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers, every column [`Align::Default`].
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let align = vec![Align::Default; headers.len()];
        Self { headers, align, rows: Vec::new() }
    }

    /// Align column `col` (ignored when there is no such column).
    #[must_use]
    pub fn align(mut self, col: usize, align: Align) -> Self {
        if let Some(a) = self.align.get_mut(col) {
            *a = align;
        }
        self
    }

    /// Append a row. A short row is padded with empty cells; cells beyond the headers are dropped.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).take(self.headers.len()).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
        self
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Plain text: every column padded to its widest cell (in characters), one space between
    /// columns, [`Align::Right`] columns right-aligned (the others left), no trailing spaces.
    pub fn to_text(&self) -> String {
        let width = |col: usize| {
            std::iter::once(&self.headers).chain(&self.rows).map(|r| r[col].chars().count()).max().unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                let pad = " ".repeat(widths[i] - c.chars().count());
                if i > 0 {
                    line.push(' ');
                }
                if self.align[i] == Align::Right {
                    line.push_str(&pad);
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `|` inside a cell would end it: escape it.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('|') { text.replace('|', "\\|").into() } else { text.into() }
}

fn line<'a>(f: &mut fmt::Formatter<'_>, cells: impl Iterator<Item = &'a str>) -> fmt::Result {
    f.write_str("|")?;
    for c in cells {
        write!(f, " {} |", cell(c))?;
    }
    f.write_str("\n")
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        line(f, self.headers.iter().map(String::as_str))?;
        f.write_str("|")?;
        for a in &self.align {
            write!(f, "{}|", a.rule())?;
        }
        f.write_str("\n")?;
        for r in &self.rows {
            line(f, r.iter().map(String::as_str))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_github_markdown_with_alignment_padding_and_escapes() {
        let mut t = Table::new(["point", "bytes", "note"]).align(1, Align::Right).align(2, Align::Center);
        t.row(["pool1", "812", "a|b"]).row(["pool2"]).row(["pool3", "1", "x", "dropped"]);
        assert_eq!(
            t.to_string(),
            "| point | bytes | note |\n|---|---:|:---:|\n| pool1 | 812 | a\\|b |\n| pool2 |  |  |\n| pool3 | 1 | x |\n"
        );
        assert_eq!(t.len(), 3);
        assert_eq!(Table::new(["a"]).to_string(), "| a |\n|---|\n");
    }

    #[test]
    fn renders_plain_text_in_padded_columns() {
        let mut t = Table::new(["plan", "total ms"]).align(1, Align::Right);
        t.row(["2-step (chosen)", "1.50"]).row(["local", "12.25"]).row(["µ", ""]);
        assert_eq!(t.to_text(), "plan            total ms\n2-step (chosen)     1.50\nlocal              12.25\nµ\n");
    }
}
