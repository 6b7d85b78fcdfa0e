//! The matrix as printed: one row per fault, one column per traffic pattern.

use std::fmt::Write as _;
use std::time::Duration;

/// How a cell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held; the text says what was measured.
    Passed(String),
    /// An assertion failed; the text says which and what was seen.
    Failed(String),
    /// The cell does not apply; the text says why.
    NotApplicable(String),
}

/// One cell's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellResult {
    /// The fault (row).
    pub row: String,
    /// The traffic pattern (column).
    pub column: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it ran.
    pub took: Duration,
}

/// The outcomes of a matrix run, in the order of its rows and columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<String>,
    columns: Vec<String>,
    cells: Vec<CellResult>,
}

impl Table {
    /// An empty table with these rows and columns, printed in this order.
    pub fn new(rows: Vec<String>, columns: Vec<String>) -> Self {
        Self {
            rows,
            columns,
            cells: Vec::new(),
        }
    }

    /// Adds a cell's outcome.
    pub fn record(&mut self, cell: CellResult) {
        self.cells.push(cell);
    }

    /// Cells run (not counting the ones that do not apply).
    pub fn run(&self) -> usize {
        self.cells
            .iter()
            .filter(|cell| !matches!(cell.outcome, Outcome::NotApplicable(_)))
            .count()
    }

    /// Cells that passed.
    pub fn passed(&self) -> usize {
        self.cells
            .iter()
            .filter(|cell| matches!(cell.outcome, Outcome::Passed(_)))
            .count()
    }

    /// Cells that failed, in row and column order.
    pub fn failures(&self) -> Vec<&CellResult> {
        let mut failed: Vec<&CellResult> = self
            .cells
            .iter()
            .filter(|cell| matches!(cell.outcome, Outcome::Failed(_)))
            .collect();
        failed.sort_by_key(|cell| (self.row_index(&cell.row), self.column_index(&cell.column)));
        failed
    }

    /// The matrix: `PASS`, `FAIL`, `n.a.`, or `-` for a cell not run (filtered out).
    pub fn render(&self) -> String {
        let first = self
            .rows
            .iter()
            .map(String::len)
            .chain(["fault \\ traffic".len()])
            .max()
            .unwrap_or(0);
        let widths: Vec<usize> = self.columns.iter().map(|c| c.len().max(4)).collect();
        let mut out = String::new();
        let _ = write!(out, "{:<first$}", "fault \\ traffic");
        for (column, width) in self.columns.iter().zip(&widths) {
            let _ = write!(out, "  {column:<width$}");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "{row:<first$}");
            for (column, width) in self.columns.iter().zip(&widths) {
                let mark = match self.cell(row, column).map(|cell| &cell.outcome) {
                    Some(Outcome::Passed(_)) => "PASS",
                    Some(Outcome::Failed(_)) => "FAIL",
                    Some(Outcome::NotApplicable(_)) => "n.a.",
                    None => "-",
                };
                let _ = write!(out, "  {mark:<width$}");
            }
            out.push('\n');
        }
        out
    }

    /// `fault matrix: 52 cells run, 50 passed, 2 failed`.
    pub fn summary(&self) -> String {
        let run = self.run();
        let passed = self.passed();
        let not_applicable = self.cells.len() - run;
        let mut line = format!(
            "fault matrix: {run} cells run, {passed} passed, {} failed",
            run - passed
        );
        if not_applicable > 0 {
            let _ = write!(line, " ({not_applicable} n.a.)");
        }
        line
    }

    /// Every failing cell with its message, one block each.
    pub fn failure_report(&self) -> String {
        let mut out = String::new();
        for cell in self.failures() {
            if let Outcome::Failed(why) = &cell.outcome {
                let _ = writeln!(
                    out,
                    "FAIL {} x {} ({:.1?}):",
                    cell.row, cell.column, cell.took
                );
                for line in why.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        out
    }

    /// Every cell that ran with what it measured, one line each, in row and column order.
    pub fn details(&self) -> String {
        let mut cells: Vec<&CellResult> = self.cells.iter().collect();
        cells.sort_by_key(|cell| (self.row_index(&cell.row), self.column_index(&cell.column)));
        let mut out = String::new();
        for cell in cells {
            let (mark, text) = match &cell.outcome {
                Outcome::Passed(text) => ("PASS", text.as_str()),
                Outcome::Failed(_) => ("FAIL", "(see below)"),
                Outcome::NotApplicable(text) => ("n.a.", text.as_str()),
            };
            let _ = writeln!(
                out,
                "{mark} {} x {} ({:.1?}): {text}",
                cell.row, cell.column, cell.took
            );
        }
        out
    }

    fn cell(&self, row: &str, column: &str) -> Option<&CellResult> {
        self.cells
            .iter()
            .find(|cell| cell.row == row && cell.column == column)
    }

    fn row_index(&self, row: &str) -> usize {
        self.rows
            .iter()
            .position(|r| r == row)
            .unwrap_or(usize::MAX)
    }

    fn column_index(&self, column: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == column)
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(row: &str, column: &str, outcome: Outcome) -> CellResult {
        CellResult {
            row: row.into(),
            column: column.into(),
            outcome,
            took: Duration::from_millis(1),
        }
    }

    #[test]
    fn prints_rows_columns_and_counts() {
        let mut table = Table::new(
            vec!["reset".into(), "close 1012".into()],
            vec!["idle".into(), "sending".into()],
        );
        table.record(cell(
            "close 1012",
            "sending",
            Outcome::Failed("boom".into()),
        ));
        table.record(cell("reset", "idle", Outcome::Passed(String::new())));
        table.record(cell(
            "reset",
            "sending",
            Outcome::NotApplicable("no".into()),
        ));
        table.record(cell("close 1012", "idle", Outcome::Passed(String::new())));
        assert_eq!(
            table.render(),
            "fault \\ traffic  idle  sending\n\
             reset            PASS  n.a.   \n\
             close 1012       PASS  FAIL   \n"
        );
        assert_eq!(
            table.summary(),
            "fault matrix: 3 cells run, 2 passed, 1 failed (1 n.a.)"
        );
        assert!(table.failure_report().contains("FAIL close 1012 x sending"));
        assert!(table.failure_report().contains("    boom"));
    }
}
