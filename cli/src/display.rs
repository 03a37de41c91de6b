//! Results as a text table, the way the shell shows them: NULL spelled out,
//! at most `max_rows` rows with a footer saying how many there were, cells
//! cut to the terminal's width with `...`, or one record per block in
//! expanded mode. Piped output gets every row and whole cells.

use std::io::{IsTerminal, Write};

use anyhow::{Result, anyhow};
use console::{measure_text_width, truncate_str};
use fairway_engine::Session;
use fairway_engine::arrow::array::RecordBatch;
use fairway_engine::arrow::datatypes::SchemaRef;
use fairway_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use fairway_engine::datafusion::common::config::FormatOptions as DataFusionFormat;

/// Narrowest a cut column gets: one character and `...`.
const MIN_CUT_WIDTH: usize = 4;

/// Expanded mode (`\x`): one block per row, `column | value` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expanded {
    #[default]
    Off,
    On,
    /// Expanded only when the table would be wider than the terminal.
    Auto,
}

impl Expanded {
    pub fn name(self) -> &'static str {
        match self {
            Expanded::Off => "off",
            Expanded::On => "on",
            Expanded::Auto => "auto",
        }
    }
}

/// How one table is laid out.
#[derive(Debug, Clone)]
pub struct TableStyle {
    /// Rows shown at most; `None` shows all.
    pub max_rows: Option<usize>,
    /// Width of the terminal; `None` never cuts cells.
    pub width: Option<usize>,
    pub expanded: Expanded,
    /// How NULL is written.
    pub null: String,
}

impl TableStyle {
    /// Every row, whole cells, NULL as `NULL` (for piped output).
    pub fn complete() -> Self {
        Self {
            max_rows: None,
            width: None,
            expanded: Expanded::Off,
            null: "NULL".to_string(),
        }
    }
}

/// The style of a table written to stdout: on a terminal at most
/// `max_rows` rows (0: all) cut to the terminal's width; piped, complete.
pub fn terminal_style(max_rows: usize, expanded: Expanded) -> TableStyle {
    if std::io::stdout().is_terminal() {
        TableStyle {
            max_rows: (max_rows > 0).then_some(max_rows),
            width: console::Term::stdout()
                .size_checked()
                .map(|(_, w)| w as usize),
            expanded,
            null: "NULL".to_string(),
        }
    } else {
        TableStyle {
            expanded,
            ..TableStyle::complete()
        }
    }
}

/// Writes a table to stdout with the session's `datafusion.format.*`
/// settings, the progress bars hidden meanwhile.
pub fn print_table(
    session: &Session,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: &TableStyle,
) -> Result<()> {
    let state = session.context().state();
    let format = &state.config_options().format;
    fairway_observe::progress::suspend(|| {
        let mut out = std::io::stdout().lock();
        write_table(&mut out, schema, batches, style, format)?;
        out.flush()?;
        Ok(())
    })
}

/// The text of every shown cell, and how many rows there were in all.
struct Cells {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    total: usize,
}

fn cells(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: &TableStyle,
    format: &DataFusionFormat,
) -> Result<Cells> {
    let options = format_options(format, &style.null)?;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let limit = style.max_rows.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    'batches: for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("cannot format the result: {e}"))?;
        for row in 0..batch.num_rows() {
            if rows.len() >= limit {
                break 'batches;
            }
            rows.push(
                formatters
                    .iter()
                    .map(|f| one_line(&f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(Cells {
        header: schema.fields().iter().map(|f| one_line(f.name())).collect(),
        rows,
        total,
    })
}

/// DataFusion's `datafusion.format.*` settings, with NULL written as
/// `null` (the setting when it is not empty, else `NULL`).
fn format_options<'a>(format: &'a DataFusionFormat, null: &'a str) -> Result<FormatOptions<'a>> {
    let options: FormatOptions<'a> = format
        .try_into()
        .map_err(|e| anyhow!("datafusion.format: {e}"))?;
    let null = if format.null.is_empty() {
        null
    } else {
        &format.null
    };
    Ok(options.with_null(null))
}

/// Tabs and line breaks would break the table's lines.
fn one_line(text: &str) -> String {
    if text.contains(['\n', '\r', '\t']) {
        text.replace('\n', "\\n")
            .replace('\r', "\\r")
            .replace('\t', "\\t")
    } else {
        text.to_string()
    }
}

/// Writes the table of `batches` (with `schema`) and, when rows were left
/// out, the footer `N rows (M shown; \maxrows to change)`.
pub fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: &TableStyle,
    format: &DataFusionFormat,
) -> Result<()> {
    if schema.fields().is_empty() {
        return Ok(());
    }
    let cells = cells(schema, batches, style, format)?;
    let mut widths: Vec<usize> = cells.header.iter().map(|h| measure_text_width(h)).collect();
    for row in &cells.rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(measure_text_width(cell));
        }
    }
    let natural: usize = widths.iter().sum::<usize>() + 3 * widths.len() + 1;
    let too_wide = style.width.is_some_and(|w| natural > w);
    let expanded = match style.expanded {
        Expanded::On => true,
        Expanded::Auto => too_wide && !cells.rows.is_empty(),
        Expanded::Off => false,
    };
    if expanded {
        write_records(out, &cells, style.width)?;
    } else {
        if let Some(width) = style.width.filter(|_| too_wide) {
            fit(&mut widths, width);
        }
        write_grid(out, &cells, &widths)?;
    }
    if cells.rows.len() < cells.total {
        writeln!(
            out,
            "{} rows ({} shown; \\maxrows to change)",
            cells.total,
            cells.rows.len()
        )?;
    }
    Ok(())
}

/// Narrows the widest columns, one character at a time, until the table
/// fits in `width` or every column is as narrow as a cut column gets.
fn fit(widths: &mut [usize], width: usize) {
    let frame = 3 * widths.len() + 1;
    loop {
        let total: usize = widths.iter().sum::<usize>() + frame;
        if total <= width {
            return;
        }
        let Some((i, &w)) = widths.iter().enumerate().max_by_key(|(_, w)| **w) else {
            return;
        };
        if w <= MIN_CUT_WIDTH {
            return;
        }
        widths[i] = w - 1;
    }
}

fn cut(text: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if measure_text_width(text) <= width {
        std::borrow::Cow::Borrowed(text)
    } else {
        truncate_str(text, width, "...")
    }
}

fn write_grid(out: &mut dyn Write, cells: &Cells, widths: &[usize]) -> Result<()> {
    let rule: String = widths.iter().fold(String::from("+"), |mut s, w| {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
        s
    });
    let line = |out: &mut dyn Write, row: &[String]| -> Result<()> {
        let mut text = String::from("|");
        for (cell, &w) in row.iter().zip(widths) {
            let shown = cut(cell, w);
            let pad = w.saturating_sub(measure_text_width(&shown));
            text.push(' ');
            text.push_str(&shown);
            text.push_str(&" ".repeat(pad));
            text.push_str(" |");
        }
        writeln!(out, "{text}")?;
        Ok(())
    };
    writeln!(out, "{rule}")?;
    line(out, &cells.header)?;
    writeln!(out, "{rule}")?;
    for row in &cells.rows {
        line(out, row)?;
    }
    if !cells.rows.is_empty() {
        writeln!(out, "{rule}")?;
    }
    Ok(())
}

/// psql's expanded display: `-[ RECORD n ]---` then `column | value`.
fn write_records(out: &mut dyn Write, cells: &Cells, width: Option<usize>) -> Result<()> {
    let name_width = cells
        .header
        .iter()
        .map(|h| measure_text_width(h))
        .max()
        .unwrap_or(0);
    let value_width = width.map(|w| w.saturating_sub(name_width + 3).max(MIN_CUT_WIDTH));
    for (i, row) in cells.rows.iter().enumerate() {
        let title = format!("-[ RECORD {} ]", i + 1);
        let rule = width.unwrap_or(name_width + 20).max(title.len());
        writeln!(out, "{title}{}", "-".repeat(rule - title.len()))?;
        for (name, value) in cells.header.iter().zip(row) {
            let pad = name_width - measure_text_width(name);
            let shown = match value_width {
                Some(w) => cut(value, w),
                None => std::borrow::Cow::Borrowed(value.as_str()),
            };
            writeln!(out, "{name}{} | {shown}", " ".repeat(pad))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fairway_engine::arrow::array::{Int64Array, StringArray};
    use fairway_engine::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec![
                    Some("a fairly long name"),
                    Some("b"),
                    None,
                ])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    fn render(style: &TableStyle, format: &DataFusionFormat) -> String {
        let (schema, batch) = batch();
        let mut out = Vec::new();
        write_table(&mut out, &schema, &[batch], style, format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nulls_are_spelled_out_and_every_row_is_shown_by_default() {
        let text = render(&TableStyle::complete(), &DataFusionFormat::default());
        assert_eq!(
            text,
            "+------+--------------------+\n\
             | id   | name               |\n\
             +------+--------------------+\n\
             | 1    | a fairly long name |\n\
             | NULL | b                  |\n\
             | 3    | NULL               |\n\
             +------+--------------------+\n"
        );
    }

    #[test]
    fn datafusion_format_null_wins_when_set() {
        let format = DataFusionFormat {
            null: "∅".to_string(),
            ..Default::default()
        };
        let text = render(&TableStyle::complete(), &format);
        assert!(text.contains("| ∅  | b                  |"), "{text}");
    }

    #[test]
    fn max_rows_shows_the_first_rows_and_a_footer() {
        let style = TableStyle {
            max_rows: Some(1),
            ..TableStyle::complete()
        };
        let text = render(&style, &DataFusionFormat::default());
        assert!(text.contains("| 1  | a fairly long name |"), "{text}");
        assert!(!text.contains("| 3 "), "{text}");
        assert!(
            text.ends_with("3 rows (1 shown; \\maxrows to change)\n"),
            "{text}"
        );
    }

    #[test]
    fn wide_cells_are_cut_to_the_width() {
        let style = TableStyle {
            width: Some(20),
            ..TableStyle::complete()
        };
        let text = render(&style, &DataFusionFormat::default());
        for line in text.lines() {
            assert!(measure_text_width(line) <= 20, "{line:?} in\n{text}");
        }
        assert!(text.contains("..."), "{text}");
    }

    #[test]
    fn expanded_mode_prints_one_block_per_row() {
        let style = TableStyle {
            expanded: Expanded::On,
            ..TableStyle::complete()
        };
        let text = render(&style, &DataFusionFormat::default());
        assert!(text.starts_with("-[ RECORD 1 ]"), "{text}");
        assert!(text.contains("\nid   | NULL\nname | b\n"), "{text}");
        let auto = TableStyle {
            expanded: Expanded::Auto,
            width: Some(200),
            ..TableStyle::complete()
        };
        assert!(render(&auto, &DataFusionFormat::default()).starts_with('+'));
    }
}
