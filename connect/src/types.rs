//! Arrow types and Spark's: the Spark types a schema reports, the Arrow
//! types results are sent in (what a Spark server would send), and Spark's
//! type strings (`long`, `decimal(15,2)`, `struct<a:int>`, DDL `a int, b
//! string`, and the JSON form of `StructType.json()`).

use std::sync::Arc;

use fairway_engine::arrow::array::{ArrayRef, RecordBatch};
use fairway_engine::arrow::compute::cast;
use fairway_engine::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::error::{Result, SparkError};
use crate::proto::{self, data_type as dt};

/// The Arrow type a Spark client expects for a column of `data_type`:
/// Spark has no unsigned integers, no view or large strings, microsecond
/// timestamps only, dates as days.
pub fn spark_arrow_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::Float16 => DataType::Float32,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            DataType::Binary
        }
        DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        DataType::Time32(_) | DataType::Time64(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Duration(_) => DataType::Duration(TimeUnit::Microsecond),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::Decimal256(p, s) if *p <= 38 => DataType::Decimal128(*p, *s),
        DataType::Dictionary(_, value) => spark_arrow_type(value),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => DataType::List(Arc::new(spark_field(f))),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| spark_field(f)).collect::<Fields>())
        }
        DataType::Map(entries, sorted) => DataType::Map(Arc::new(spark_field(entries)), *sorted),
        other => other.clone(),
    }
}

fn spark_field(field: &Field) -> Field {
    Field::new(
        field.name(),
        spark_arrow_type(field.data_type()),
        field.is_nullable(),
    )
}

/// `schema` with every column in the Arrow type a Spark client expects.
pub fn spark_arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| spark_field(f))
            .collect::<Vec<_>>(),
    ))
}

/// `batch` cast to [`spark_arrow_schema`].
pub fn to_spark_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type()).map_err(|e| {
                    SparkError::unsupported(format!(
                        "column '{}' of type {}: {e}",
                        field.name(),
                        column.data_type()
                    ))
                })
            }
        })
        .collect::<Result<_>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(target),
        columns,
        &fairway_engine::arrow::array::RecordBatchOptions::new()
            .with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| SparkError::unsupported(format!("result batch: {e}")))
}

/// The Spark type of an Arrow column type.
pub fn spark_type(data_type: &DataType) -> proto::DataType {
    use dt::Kind;
    let kind = match spark_arrow_type(data_type) {
        DataType::Null => Kind::Null(dt::Null::default()),
        DataType::Boolean => Kind::Boolean(dt::Boolean::default()),
        DataType::Int8 => Kind::Byte(dt::Byte::default()),
        DataType::Int16 => Kind::Short(dt::Short::default()),
        DataType::Int32 => Kind::Integer(dt::Integer::default()),
        DataType::Int64 => Kind::Long(dt::Long::default()),
        DataType::Float32 => Kind::Float(dt::Float::default()),
        DataType::Float64 => Kind::Double(dt::Double::default()),
        DataType::Decimal128(p, s) => Kind::Decimal(dt::Decimal {
            precision: Some(i32::from(p)),
            scale: Some(i32::from(s)),
            type_variation_reference: 0,
        }),
        DataType::Utf8 => Kind::String(dt::String::default()),
        DataType::Binary => Kind::Binary(dt::Binary::default()),
        DataType::Date32 => Kind::Date(dt::Date::default()),
        DataType::Timestamp(_, Some(_)) => Kind::Timestamp(dt::Timestamp::default()),
        DataType::Timestamp(_, None) => Kind::TimestampNtz(dt::TimestampNtz::default()),
        DataType::Duration(_) => Kind::DayTimeInterval(dt::DayTimeInterval {
            start_field: Some(0),
            end_field: Some(3),
            type_variation_reference: 0,
        }),
        DataType::Interval(_) => Kind::CalendarInterval(dt::CalendarInterval::default()),
        DataType::List(f) => Kind::Array(Box::new(dt::Array {
            element_type: Some(Box::new(spark_type(f.data_type()))),
            contains_null: f.is_nullable(),
            type_variation_reference: 0,
        })),
        DataType::Struct(fields) => Kind::Struct(struct_type(&fields)),
        DataType::Map(entries, _) => {
            let (key, value) = map_fields(&entries);
            Kind::Map(Box::new(dt::Map {
                key_type: Some(Box::new(spark_type(key.data_type()))),
                value_type: Some(Box::new(spark_type(value.data_type()))),
                value_contains_null: value.is_nullable(),
                type_variation_reference: 0,
            }))
        }
        // Spark has no such type; the client shows it by name.
        other => Kind::Unparsed(dt::Unparsed {
            data_type_string: other.to_string(),
        }),
    };
    proto::DataType { kind: Some(kind) }
}

fn map_fields(entries: &Field) -> (Field, Field) {
    match entries.data_type() {
        DataType::Struct(fields) if fields.len() == 2 => {
            (fields[0].as_ref().clone(), fields[1].as_ref().clone())
        }
        _ => (
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ),
    }
}

fn struct_type(fields: &Fields) -> dt::Struct {
    dt::Struct {
        fields: fields
            .iter()
            .map(|f| dt::StructField {
                name: f.name().clone(),
                data_type: Some(spark_type(f.data_type())),
                nullable: f.is_nullable(),
                metadata: None,
            })
            .collect(),
        type_variation_reference: 0,
    }
}

/// A schema as Spark's `StructType`.
pub fn spark_schema(schema: &Schema) -> proto::DataType {
    proto::DataType {
        kind: Some(dt::Kind::Struct(struct_type(schema.fields()))),
    }
}

/// Spark's name of a type, as `printSchema` and `dtypes` show it.
pub fn type_name(data_type: &DataType) -> String {
    match spark_arrow_type(data_type) {
        DataType::Null => "void".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "byte".into(),
        DataType::Int16 => "short".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "long".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Duration(_) => "interval day to second".into(),
        nested @ (DataType::List(_) | DataType::Struct(_) | DataType::Map(..)) => {
            nested_name(&nested, type_name)
        }
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Spark's SQL name of a type, as `DESCRIBE` and `dtypes` show it
/// (`bigint`, `int`, `string`, `decimal(15,2)`, `array<int>`, ...).
pub fn sql_type_name(data_type: &DataType) -> String {
    match spark_arrow_type(data_type) {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        nested @ (DataType::List(_) | DataType::Struct(_) | DataType::Map(..)) => {
            nested_name(&nested, sql_type_name)
        }
        other => type_name(&other),
    }
}

/// `array<...>`, `struct<a:...>` or `map<...,...>` with the inner types
/// named by `name`.
fn nested_name(data_type: &DataType, name: fn(&DataType) -> String) -> String {
    match data_type {
        DataType::List(f) => format!("array<{}>", name(f.data_type())),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), name(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::Map(entries, _) => {
            let (k, v) = map_fields(entries);
            format!("map<{},{}>", name(k.data_type()), name(v.data_type()))
        }
        other => name(other),
    }
}

/// The Arrow type of a Spark type.
pub fn arrow_type(spark: &proto::DataType) -> Result<DataType> {
    use dt::Kind;
    let Some(kind) = &spark.kind else {
        return Err(SparkError::invalid_plan("a data type without a kind"));
    };
    Ok(match kind {
        Kind::Null(_) => DataType::Null,
        Kind::Binary(_) => DataType::Binary,
        Kind::Boolean(_) => DataType::Boolean,
        Kind::Byte(_) => DataType::Int8,
        Kind::Short(_) => DataType::Int16,
        Kind::Integer(_) => DataType::Int32,
        Kind::Long(_) => DataType::Int64,
        Kind::Float(_) => DataType::Float32,
        Kind::Double(_) => DataType::Float64,
        Kind::Decimal(d) => DataType::Decimal128(
            d.precision.unwrap_or(10).clamp(1, 38) as u8,
            d.scale.unwrap_or(0).clamp(-38, 38) as i8,
        ),
        Kind::String(_) | Kind::Char(_) | Kind::VarChar(_) => DataType::Utf8,
        Kind::Date(_) => DataType::Date32,
        Kind::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::TimestampNtz(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        Kind::DayTimeInterval(_) => DataType::Duration(TimeUnit::Microsecond),
        Kind::Array(a) => {
            let element = match &a.element_type {
                Some(e) => arrow_type(e)?,
                None => DataType::Null,
            };
            DataType::List(Arc::new(Field::new("element", element, a.contains_null)))
        }
        Kind::Struct(s) => DataType::Struct(struct_fields(s)?),
        Kind::Map(m) => {
            let key = match &m.key_type {
                Some(k) => arrow_type(k)?,
                None => DataType::Utf8,
            };
            let value = match &m.value_type {
                Some(v) => arrow_type(v)?,
                None => DataType::Utf8,
            };
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", key, false),
                        Field::new("value", value, m.value_contains_null),
                    ])),
                    false,
                )),
                false,
            )
        }
        Kind::Unparsed(u) => parse_type(&u.data_type_string)?,
        other => {
            return Err(SparkError::unsupported(format!(
                "the Spark type {}",
                format!("{other:?}")
                    .split('(')
                    .next()
                    .unwrap_or("?")
                    .to_ascii_lowercase()
            )));
        }
    })
}

fn struct_fields(s: &dt::Struct) -> Result<Fields> {
    s.fields
        .iter()
        .map(|f| {
            let data_type = match &f.data_type {
                Some(t) => arrow_type(t)?,
                None => DataType::Null,
            };
            Ok(Field::new(&f.name, data_type, f.nullable))
        })
        .collect::<Result<Vec<_>>>()
        .map(Fields::from)
}

/// A schema given as Spark's JSON (`StructType.json()`) or DDL (`a int,
/// b string`).
pub fn parse_schema(text: &str) -> Result<Schema> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| SparkError::invalid_plan(format!("schema JSON: {e}")))?;
        return match json_type(&value)? {
            DataType::Struct(fields) => Ok(Schema::new(fields)),
            other => Ok(Schema::new(vec![Field::new("value", other, true)])),
        };
    }
    let body = text
        .strip_prefix("struct<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text);
    let mut fields = Vec::new();
    for part in split_top(body, ',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, rest) = split_name(part)?;
        let mut rest = rest.trim().trim_start_matches(':').trim().to_string();
        let mut nullable = true;
        let upper = rest.to_ascii_uppercase();
        if let Some(stripped) = upper.strip_suffix(" NOT NULL") {
            rest.truncate(stripped.len());
            nullable = false;
        }
        fields.push(Field::new(name, parse_type(&rest)?, nullable));
    }
    if fields.is_empty() {
        return Err(SparkError::parse(format!("empty schema '{text}'")));
    }
    Ok(Schema::new(fields))
}

fn split_name(part: &str) -> Result<(String, &str)> {
    if let Some(rest) = part.strip_prefix('`') {
        let end = rest
            .find('`')
            .ok_or_else(|| SparkError::parse(format!("unclosed ` in '{part}'")))?;
        return Ok((rest[..end].to_string(), &rest[end + 1..]));
    }
    let end = part
        .find(|c: char| c.is_whitespace() || c == ':')
        .ok_or_else(|| SparkError::parse(format!("'{part}' has no type")))?;
    Ok((part[..end].to_string(), &part[end..]))
}

/// Splits at `sep` outside `<...>` and `(...)`.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// One Spark type string: `int`, `bigint`, `decimal(10,2)`, `array<int>`,
/// `map<string,int>`, `struct<a:int,b:string>`.
pub fn parse_type(text: &str) -> Result<DataType> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let simple = match lower.as_str() {
        "boolean" | "bool" => Some(DataType::Boolean),
        "byte" | "tinyint" => Some(DataType::Int8),
        "short" | "smallint" => Some(DataType::Int16),
        "int" | "integer" => Some(DataType::Int32),
        "long" | "bigint" => Some(DataType::Int64),
        "float" | "real" => Some(DataType::Float32),
        "double" => Some(DataType::Float64),
        "string" | "text" => Some(DataType::Utf8),
        "binary" => Some(DataType::Binary),
        "date" => Some(DataType::Date32),
        "timestamp" | "timestamp_ltz" => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
        "timestamp_ntz" => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        "void" | "null" => Some(DataType::Null),
        "decimal" | "dec" | "numeric" => Some(DataType::Decimal128(10, 0)),
        _ => None,
    };
    if let Some(t) = simple {
        return Ok(t);
    }
    if let Some(args) = ["decimal(", "dec(", "numeric("]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .and_then(|r| r.strip_suffix(')'))
    {
        let mut nums = args.split(',').map(|n| n.trim().parse::<i32>());
        let p = nums.next().and_then(|n| n.ok()).unwrap_or(10);
        let s = nums.next().and_then(|n| n.ok()).unwrap_or(0);
        if !(1..=38).contains(&p) || s > p || s < 0 {
            return Err(SparkError::parse(format!("invalid decimal type '{t}'")));
        }
        return Ok(DataType::Decimal128(p as u8, s as i8));
    }
    if (lower.starts_with("varchar(") || lower.starts_with("char(")) && lower.ends_with(')') {
        return Ok(DataType::Utf8);
    }
    if let Some(inner) = lower
        .strip_prefix("array<")
        .and_then(|_| t.get(6..t.len() - 1))
    {
        return Ok(DataType::List(Arc::new(Field::new(
            "element",
            parse_type(inner)?,
            true,
        ))));
    }
    if let Some(inner) = lower
        .strip_prefix("map<")
        .and_then(|_| t.get(4..t.len() - 1))
    {
        let parts = split_top(inner, ',');
        if parts.len() != 2 {
            return Err(SparkError::parse(format!("invalid map type '{t}'")));
        }
        return Ok(DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", parse_type(parts[0])?, false),
                    Field::new("value", parse_type(parts[1])?, true),
                ])),
                false,
            )),
            false,
        ));
    }
    if lower.starts_with("struct<") && lower.ends_with('>') {
        return Ok(DataType::Struct(parse_schema(t)?.fields().clone()));
    }
    Err(SparkError::parse(format!(
        "[UNSUPPORTED_DATATYPE] unsupported data type '{t}'"
    )))
}

/// A type in Spark's JSON form.
fn json_type(value: &serde_json::Value) -> Result<DataType> {
    use serde_json::Value;
    match value {
        Value::String(name) => parse_type(name),
        Value::Object(map) => match map.get("type").and_then(Value::as_str) {
            Some("struct") => {
                let mut fields = Vec::new();
                for f in map
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                    let data_type = json_type(f.get("type").unwrap_or(&Value::Null))?;
                    let nullable = f.get("nullable").and_then(Value::as_bool).unwrap_or(true);
                    fields.push(Field::new(name, data_type, nullable));
                }
                Ok(DataType::Struct(Fields::from(fields)))
            }
            Some("array") => Ok(DataType::List(Arc::new(Field::new(
                "element",
                json_type(map.get("elementType").unwrap_or(&Value::Null))?,
                map.get("containsNull")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            )))),
            Some("map") => Ok(DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new(
                            "key",
                            json_type(map.get("keyType").unwrap_or(&Value::Null))?,
                            false,
                        ),
                        Field::new(
                            "value",
                            json_type(map.get("valueType").unwrap_or(&Value::Null))?,
                            map.get("valueContainsNull")
                                .and_then(Value::as_bool)
                                .unwrap_or(true),
                        ),
                    ])),
                    false,
                )),
                false,
            )),
            other => Err(SparkError::invalid_plan(format!(
                "schema JSON: unknown type {other:?}"
            ))),
        },
        other => Err(SparkError::invalid_plan(format!(
            "schema JSON: unexpected {other}"
        ))),
    }
}

/// A schema as DDL: `a BIGINT, b STRING`.
pub fn schema_ddl(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let mut s = format!("{} {}", f.name(), type_name(f.data_type()).to_uppercase());
            if !f.is_nullable() {
                s.push_str(" NOT NULL");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_and_json_schemas_parse_to_the_same_arrow_schema() {
        let ddl = parse_schema("a bigint, `b c` string not null, d decimal(15, 2), e array<int>")
            .unwrap();
        assert_eq!(ddl.field(0).data_type(), &DataType::Int64);
        assert_eq!(ddl.field(1).name(), "b c");
        assert!(!ddl.field(1).is_nullable());
        assert_eq!(ddl.field(2).data_type(), &DataType::Decimal128(15, 2));
        let json = parse_schema(
            r#"{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,"metadata":{}},
                {"name":"e","type":{"type":"array","elementType":"integer","containsNull":true},"nullable":true,"metadata":{}}]}"#,
        )
        .unwrap();
        assert_eq!(json.field(0).data_type(), &DataType::Int64);
        assert_eq!(json.field(1).data_type(), ddl.field(3).data_type());
        assert!(parse_schema("a nosuchtype").is_err());
    }

    #[test]
    fn results_use_the_arrow_types_spark_sends() {
        assert_eq!(spark_arrow_type(&DataType::Utf8View), DataType::Utf8);
        assert_eq!(spark_arrow_type(&DataType::UInt32), DataType::Int64);
        assert_eq!(
            spark_arrow_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(type_name(&DataType::Decimal128(15, 2)), "decimal(15,2)");
        assert_eq!(type_name(&DataType::Utf8View), "string");
        assert_eq!(sql_type_name(&DataType::Int64), "bigint");
        assert_eq!(sql_type_name(&DataType::Int32), "int");
        let list = DataType::List(Arc::new(Field::new("element", DataType::Int64, true)));
        assert_eq!(type_name(&list), "array<long>");
        assert_eq!(sql_type_name(&list), "array<bigint>");
    }
}
