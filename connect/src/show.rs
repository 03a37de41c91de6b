//! What `df.show()` and `df.printSchema()` print, as Spark prints them:
//! the bordered text table of `Dataset.showString` (cells right-aligned
//! when truncating, `NULL` for nulls, `only showing top N rows`) and the
//! `root |-- name: type (nullable = true)` tree.

use fairway_engine::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use fairway_engine::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use fairway_engine::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Result, SparkError};
use crate::types::type_name;

/// The text of `show(num_rows, truncate, vertical)` for `batches`, which
/// hold at most `num_rows + 1` rows (one more tells that there are more).
pub fn show_string(
    schema: &Schema,
    batches: &[RecordBatch],
    num_rows: usize,
    truncate: usize,
    vertical: bool,
) -> Result<String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    'outer: for batch in batches {
        let columns: Vec<Vec<String>> = batch.columns().iter().map(cells).collect::<Result<_>>()?;
        for r in 0..batch.num_rows() {
            if rows.len() > num_rows {
                break 'outer;
            }
            rows.push(columns.iter().map(|c| c[r].clone()).collect());
        }
    }
    let has_more = rows.len() > num_rows;
    rows.truncate(num_rows);
    let cut = |cell: String| -> String {
        if truncate == 0 || cell.chars().count() <= truncate {
            return cell;
        }
        if truncate < 4 {
            cell.chars().take(truncate).collect()
        } else {
            let mut s: String = cell.chars().take(truncate - 3).collect();
            s.push_str("...");
            s
        }
    };
    let header: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| cut(f.name().clone()))
        .collect();
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(cut).collect())
        .collect();
    let width = |s: &str| s.chars().count();
    let mut out = String::new();
    if !vertical {
        let mut widths: Vec<usize> = header.iter().map(|h| width(h).max(3)).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let pad = |cell: &str, w: usize| -> String {
            let fill = " ".repeat(w.saturating_sub(width(cell)));
            if truncate > 0 {
                format!("{fill}{cell}")
            } else {
                format!("{cell}{fill}")
            }
        };
        let sep: String = {
            let mut s = String::from("+");
            for w in &widths {
                s.push_str(&"-".repeat(*w));
                s.push('+');
            }
            s.push('\n');
            s
        };
        let line = |cells: &[String]| -> String {
            let mut s = String::from("|");
            for (cell, w) in cells.iter().zip(&widths) {
                s.push_str(&pad(cell, *w));
                s.push('|');
            }
            s.push('\n');
            s
        };
        out.push_str(&sep);
        out.push_str(&line(&header));
        out.push_str(&sep);
        for row in &rows {
            out.push_str(&line(row));
        }
        out.push_str(&sep);
    } else {
        let name_width = header.iter().map(|h| width(h)).max().unwrap_or(0).max(3);
        let data_width = rows
            .iter()
            .flatten()
            .map(|c| width(c))
            .max()
            .unwrap_or(0)
            .max(3);
        for (i, row) in rows.iter().enumerate() {
            let title = format!("-RECORD {i}");
            let total = name_width + data_width + 5;
            out.push_str(&title);
            out.push_str(&"-".repeat(total.saturating_sub(width(&title))));
            out.push('\n');
            for (name, cell) in header.iter().zip(row) {
                out.push_str(&format!(
                    " {name}{} | {cell}{} \n",
                    " ".repeat(name_width - width(name)),
                    " ".repeat(data_width.saturating_sub(width(cell)))
                ));
            }
        }
        if rows.is_empty() {
            out.push_str("(0 rows)\n");
        }
    }
    if has_more {
        let noun = if num_rows == 1 { "row" } else { "rows" };
        // Spark 4 ends the text there, without a newline.
        out.push_str(&format!("only showing top {num_rows} {noun}"));
    }
    Ok(out)
}

/// Every value of `column` as Spark's `show` prints it.
fn cells(column: &ArrayRef) -> Result<Vec<String>> {
    (0..column.len()).map(|i| cell(column, i)).collect()
}

fn cell(column: &ArrayRef, i: usize) -> Result<String> {
    if column.is_null(i) {
        return Ok("NULL".to_string());
    }
    Ok(match column.data_type() {
        DataType::Float64 => java_double(column.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => java_float(column.as_primitive::<Float32Type>().value(i)),
        DataType::Binary => {
            let bytes = column.as_binary::<i32>().value(i);
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
            format!("[{}]", hex.join(" "))
        }
        DataType::Timestamp(_, _) => {
            let text = formatted(column, i)?;
            timestamp_text(&text)
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let values = match column.data_type() {
                DataType::List(_) => column.as_list::<i32>().value(i),
                _ => column.as_list::<i64>().value(i),
            };
            let items: Vec<String> = cells(&values)?;
            format!("[{}]", items.join(", "))
        }
        DataType::Struct(_) => {
            let s = column.as_struct();
            let items: Vec<String> = s
                .columns()
                .iter()
                .map(|c| cell(c, i))
                .collect::<Result<_>>()?;
            format!("{{{}}}", items.join(", "))
        }
        DataType::Map(_, _) => {
            let m = column.as_map().value(i);
            let keys = cells(m.column(0))?;
            let values = cells(m.column(1))?;
            let items: Vec<String> = keys
                .into_iter()
                .zip(values)
                .map(|(k, v)| format!("{k} -> {v}"))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => formatted(column, i)?,
    })
}

fn formatted(column: &ArrayRef, i: usize) -> Result<String> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
        .map_err(|e| SparkError::unsupported(format!("showing {}: {e}", column.data_type())))?;
    Ok(formatter.value(i).to_string())
}

/// `2024-01-02T03:04:05.120` as Spark prints it: `2024-01-02 03:04:05.12`.
fn timestamp_text(iso: &str) -> String {
    let mut s = iso.replacen('T', " ", 1);
    if let Some(z) = s.find(['Z', '+']) {
        s.truncate(z);
    }
    if let Some(dot) = s.find('.') {
        let trimmed = s.trim_end_matches('0').to_string();
        s = if trimmed.len() == dot + 1 {
            trimmed[..dot].to_string()
        } else {
            trimmed
        };
    }
    s
}

/// Java's `Double.toString`: the shortest digits that read back, plain for
/// 1e-3 <= |x| < 1e7 (always with a fraction), else `d.dddE±n`.
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    java_float_text(format!("{x:e}"), x == 0.0, x.abs())
}

/// Java's `Float.toString` (same rules as [`java_double`]).
pub fn java_float(x: f32) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    java_float_text(format!("{x:e}"), x == 0.0, f64::from(x.abs()))
}

fn java_float_text(sci: String, zero: bool, abs: f64) -> String {
    // `sci` is Rust's shortest form: `-1.2345e7`, `5e-4`, `0e0`.
    let negative = sci.starts_with('-');
    let body = sci.trim_start_matches('-');
    let (mantissa, exponent) = body.split_once('e').unwrap_or((body, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if negative { "-" } else { "" };
    if zero {
        return format!("{sign}0.0");
    }
    if (1e-3..1e7).contains(&abs) {
        // Plain: place the point `exponent` digits after the first.
        let point = exponent + 1;
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        return format!("{sign}{int}.{frac}");
    }
    let (first, rest) = digits.split_at(1);
    let rest = if rest.is_empty() { "0" } else { rest };
    format!("{sign}{first}.{rest}E{exponent}")
}

/// `printSchema()`: `root` and one ` |-- name: type (nullable = b)` line
/// per field, nested fields indented, down to `level` levels (all if 0).
pub fn tree_string(schema: &Schema, level: usize) -> String {
    let mut out = String::from("root\n");
    for field in schema.fields() {
        tree_field(&mut out, field, 1, level);
    }
    out
}

fn tree_field(out: &mut String, field: &Field, depth: usize, level: usize) {
    if level > 0 && depth > level {
        return;
    }
    let prefix = " |   ".repeat(depth - 1);
    let data_type = field.data_type();
    let shown = match data_type {
        DataType::Struct(_) => "struct".to_string(),
        DataType::List(_) | DataType::LargeList(_) => "array".to_string(),
        DataType::Map(_, _) => "map".to_string(),
        other => type_name(other),
    };
    out.push_str(&format!(
        "{prefix} |-- {}: {shown} (nullable = {})\n",
        field.name(),
        field.is_nullable()
    ));
    match data_type {
        DataType::Struct(fields) => {
            for f in fields {
                tree_field(out, f, depth + 1, level);
            }
        }
        DataType::List(f) | DataType::LargeList(f) if level == 0 || depth < level => {
            let inner = " |   ".repeat(depth);
            let element = match f.data_type() {
                DataType::Struct(_) => "struct".to_string(),
                other => type_name(other),
            };
            out.push_str(&format!(
                "{inner} |-- element: {element} (containsNull = {})\n",
                f.is_nullable()
            ));
            if let DataType::Struct(fields) = f.data_type() {
                for g in fields {
                    tree_field(out, g, depth + 2, level);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fairway_engine::arrow::array::{Float64Array, Int64Array, StringArray};

    use super::*;

    fn batch() -> (Schema, RecordBatch) {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(vec![1, 22, 333])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("a rather long name here"),
                ])),
                Arc::new(Float64Array::from(vec![Some(1.0), Some(1.0e10), None])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn show_prints_spark_s_table() {
        let (schema, batch) = batch();
        let text = show_string(&schema, &[batch], 2, 20, false).unwrap();
        let expected = "\
+---+----+------+
| id|name|     x|
+---+----+------+
|  1|   a|   1.0|
| 22|NULL|1.0E10|
+---+----+------+
only showing top 2 rows";
        assert_eq!(text, expected);
    }

    #[test]
    fn show_truncates_to_twenty_characters_and_left_aligns_untruncated() {
        let (schema, batch) = batch();
        let text = show_string(&schema, std::slice::from_ref(&batch), 20, 20, false).unwrap();
        assert!(text.contains("|a rather long nam...|"), "{text}");
        let wide = show_string(&schema, &[batch], 20, 0, false).unwrap();
        assert!(
            wide.contains("|333|a rather long name here|NULL  |"),
            "{wide}"
        );
    }

    #[test]
    fn vertical_show_has_one_block_per_row() {
        let (schema, batch) = batch();
        let text = show_string(&schema, &[batch], 1, 20, true).unwrap();
        assert_eq!(
            text,
            "-RECORD 0---\n id   | 1   \n name | a   \n x    | 1.0 \nonly showing top 1 row"
        );
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.1), "0.1");
        assert_eq!(java_double(1234567.0), "1234567.0");
        assert_eq!(java_double(12345678.0), "1.2345678E7");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(-2.5), "-2.5");
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_float(0.5), "0.5");
    }

    #[test]
    fn print_schema_is_spark_s_tree() {
        let (schema, _) = batch();
        assert_eq!(
            tree_string(&schema, 0),
            "root\n |-- id: long (nullable = false)\n |-- name: string (nullable = true)\n |-- x: double (nullable = true)\n"
        );
    }
}
