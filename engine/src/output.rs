//! Writing query results as a table, CSV, JSON or newline-delimited JSON.

use std::io::Write;

use datafusion::arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::{EngineError, Result};
use crate::session::QueryOutput;

/// How results are printed (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Csv,
    Json,
    NdJson,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            "ndjson" | "jsonl" => Ok(Self::NdJson),
            other => Err(format!(
                "unknown format '{other}' (expected table, csv, json or ndjson)"
            )),
        }
    }
}

fn write_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::io("<output>", std::io::Error::other(e.to_string()))
}

/// Writes `output` to `out` in `format`. A statement without columns (DDL,
/// `SET`) writes nothing.
pub fn write_output(format: OutputFormat, output: &QueryOutput, out: &mut dyn Write) -> Result<()> {
    if output.schema.fields().is_empty() {
        return Ok(());
    }
    let batches: Vec<RecordBatch> = output
        .batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .cloned()
        .collect();
    match format {
        OutputFormat::Table => {
            let shown = if batches.is_empty() {
                vec![RecordBatch::new_empty(output.schema.clone())]
            } else {
                batches
            };
            let table = pretty_format_batches(&shown).map_err(write_error)?;
            writeln!(out, "{table}").map_err(write_error)?;
        }
        OutputFormat::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                writer
                    .write(&RecordBatch::new_empty(output.schema.clone()))
                    .map_err(write_error)?;
            }
            for batch in &batches {
                writer.write(batch).map_err(write_error)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut *out);
            for batch in &batches {
                writer.write(batch).map_err(write_error)?;
            }
            writer.finish().map_err(write_error)?;
            if batches.is_empty() {
                write!(out, "[]").map_err(write_error)?;
            }
            writeln!(out).map_err(write_error)?;
        }
        OutputFormat::NdJson => {
            let mut writer = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut *out);
            for batch in &batches {
                writer.write(batch).map_err(write_error)?;
            }
            writer.finish().map_err(write_error)?;
        }
    }
    Ok(())
}

/// Every row as one line of text, cells separated by ` | `, NULL as `NULL`
/// and floating-point cells rounded to 9 significant digits, so results
/// that differ only in float noise compare equal. Tests and benchmarks use
/// it to compare fairway's results with a reference.
pub fn rows_as_text(batches: &[RecordBatch]) -> Result<Vec<String>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(write_error)?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .schema()
                .fields()
                .iter()
                .zip(&formatters)
                .map(|(field, f)| {
                    let text = f.value(row).to_string();
                    match text.parse::<f64>() {
                        Ok(v) if field.data_type().is_floating() => format!("{v:.8e}"),
                        _ => text,
                    }
                })
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    Ok(rows)
}
