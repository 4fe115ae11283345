//! Plain-text output helpers: aligned tables and human-readable quantities.

use std::fmt::Write;

/// A table with a header row; numeric columns are right-aligned.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, one line per row, columns separated by two spaces, no
    /// trailing whitespace.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        // Right-align a column if every cell is a number or "-" and one is a number.
        let mut numeric = vec![true; columns];
        let mut has_number = vec![false; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
                numeric[i] &= cell == "-" || is_number(cell);
                has_number[i] |= is_number(cell);
            }
        }
        for (numeric, has_number) in numeric.iter_mut().zip(has_number) {
            *numeric &= has_number;
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - cell.chars().count();
                if numeric[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// A number, possibly followed by a unit (`1.5 KiB`).
fn is_number(cell: &str) -> bool {
    cell.split_whitespace()
        .next()
        .is_some_and(|n| n.parse::<f64>().is_ok())
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in milliseconds as `1d 2h 3m 4s` (largest units first, zeros omitted).
pub fn uptime(ms: u64) -> String {
    let mut secs = ms / 1000;
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            parts.push(format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || parts.is_empty() {
        parts.push(format!("{secs}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut t = Table::new(&["NAME", "PARTITIONS", "BYTES"]);
        t.row(vec!["orders".into(), "3".into(), "1.5 KiB".into()]);
        t.row(vec!["a".into(), "12".into(), "0 B".into()]);
        assert_eq!(
            t.render(),
            "NAME    PARTITIONS    BYTES\n\
             orders           3  1.5 KiB\n\
             a               12      0 B\n"
        );
    }

    #[test]
    fn a_column_of_dashes_is_text() {
        let mut t = Table::new(&["P", "OWNER", "LAG"]);
        t.row(vec!["0".into(), "-".into(), "-".into()]);
        t.row(vec!["1".into(), "-".into(), "12".into()]);
        assert_eq!(t.render(), "P  OWNER  LAG\n0  -        -\n1  -       12\n");
    }

    #[test]
    fn empty_table_is_just_the_header() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn human_quantities() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(61_000), "1m 1s");
        assert_eq!(uptime(90_061_000), "1d 1h 1m 1s");
        assert_eq!(uptime(3_600_000), "1h");
    }
}
