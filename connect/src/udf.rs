//! Spark functions that neither DataFusion nor `datafusion-spark` has with
//! Spark's semantics, written for fairway connect: datetime patterns
//! (`date_format`, `to_date`, `to_timestamp`), date parts as Spark numbers
//! them, `months_between`, Java-style regular expressions
//! (`regexp_extract`, `regexp_replace`, `split`), `log` with Spark's
//! argument order, `round`/`bround` of doubles as Spark rounds them (the
//! decimal the double prints as), and `monotonically_increasing_id`.
//!
//! They are registered in every connect session under Spark's names, so
//! `spark.sql` text and DataFrame calls reach the same code. Timestamps
//! are read and written in the session time zone, which is UTC.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use fairway_engine::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, ListBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use fairway_engine::arrow::compute::kernels::temporal::{DatePart, date_part};
use fairway_engine::arrow::compute::{CastOptions, cast, cast_with_options};
use fairway_engine::arrow::datatypes::{
    DataType, Field, FieldRef, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use fairway_engine::arrow::util::display::FormatOptions;
use fairway_engine::datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use fairway_engine::datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The timestamp type of Spark's `TIMESTAMP` in a UTC session.
pub fn spark_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Every function of this module, as UDFs to register.
pub fn all() -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    for (name, part) in [
        ("year", Part::Year),
        ("month", Part::Month),
        ("day", Part::Day),
        ("dayofmonth", Part::Day),
        ("dayofweek", Part::DayOfWeek),
        ("weekday", Part::WeekDay),
        ("dayofyear", Part::DayOfYear),
        ("quarter", Part::Quarter),
        ("weekofyear", Part::WeekOfYear),
        ("hour", Part::Hour),
        ("minute", Part::Minute),
        ("second", Part::Second),
    ] {
        out.push(udf(SparkFn::new(name, Kind::Part(part), 1..=1)));
    }
    let others = [
        ("date_format", Kind::DateFormat, 2..=2),
        ("to_date", Kind::ToDate { try_: false }, 1..=2),
        ("try_to_date", Kind::ToDate { try_: true }, 1..=2),
        ("to_timestamp", Kind::ToTimestamp { try_: false }, 1..=2),
        ("try_to_timestamp", Kind::ToTimestamp { try_: true }, 1..=2),
        ("months_between", Kind::MonthsBetween, 2..=3),
        ("regexp_extract", Kind::RegexpExtract, 2..=3),
        ("regexp_replace", Kind::RegexpReplace, 3..=4),
        ("split", Kind::Split, 2..=3),
        ("log", Kind::Log, 1..=2),
        ("ln", Kind::Ln, 1..=1),
        ("log10", Kind::Log10, 1..=1),
        ("log2", Kind::Log2, 1..=1),
        ("round", Kind::Round { even: false }, 1..=2),
        ("bround", Kind::Round { even: true }, 1..=2),
    ];
    for (name, kind, args) in others {
        out.push(udf(SparkFn::new(name, kind, args)));
    }
    out.push(monotonically_increasing_id());
    out
}

/// A fresh `monotonically_increasing_id()`: every instance counts from 0.
pub fn monotonically_increasing_id() -> ScalarUDF {
    udf(SparkFn::new(
        "monotonically_increasing_id",
        Kind::MonotonicId(Arc::new(Counter::default())),
        0..=0,
    ))
}

/// `inner` with its arguments cast to `types` first (the rest as given).
pub fn coerced(inner: Arc<ScalarUDF>, types: &[DataType]) -> ScalarUDF {
    ScalarUDF::new_from_impl(Coerced {
        inner,
        types: types.to_vec(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Coerced {
    inner: Arc<ScalarUDF>,
    types: Vec<DataType>,
    signature: Signature,
}

impl ScalarUDFImpl for Coerced {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match self.types.get(i) {
                Some(want) if t != want && *t != DataType::Null => want.clone(),
                _ => t.clone(),
            })
            .collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }

    fn simplify(
        &self,
        args: Vec<fairway_engine::datafusion::logical_expr::Expr>,
        info: &fairway_engine::datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<fairway_engine::datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }
}

fn udf(f: SparkFn) -> ScalarUDF {
    ScalarUDF::new_from_impl(f)
}

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl PartialEq for Counter {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for Counter {}
impl std::hash::Hash for Counter {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as *const Self as usize).hash(state)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Year,
    Month,
    Day,
    DayOfWeek,
    WeekDay,
    DayOfYear,
    Quarter,
    WeekOfYear,
    Hour,
    Minute,
    Second,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Part(Part),
    DateFormat,
    ToDate { try_: bool },
    ToTimestamp { try_: bool },
    MonthsBetween,
    RegexpExtract,
    RegexpReplace,
    Split,
    Log,
    Ln,
    Log10,
    Log2,
    Round { even: bool },
    MonotonicId(Arc<Counter>),
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SparkFn {
    name: &'static str,
    kind: Kind,
    min_args: usize,
    max_args: usize,
    signature: Signature,
}

impl SparkFn {
    fn new(name: &'static str, kind: Kind, args: std::ops::RangeInclusive<usize>) -> Self {
        let volatility = if matches!(kind, Kind::MonotonicId(_)) {
            Volatility::Volatile
        } else {
            Volatility::Immutable
        };
        SparkFn {
            name,
            kind,
            min_args: *args.start(),
            max_args: *args.end(),
            signature: if args.end() == &0 {
                Signature::nullary(volatility)
            } else {
                Signature::user_defined(volatility)
            },
        }
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

/// Dates and timestamps stay; strings (and NULL) become timestamps.
fn temporal_arg(t: &DataType) -> DataType {
    if is_temporal(t) {
        t.clone()
    } else {
        spark_timestamp()
    }
}

impl ScalarUDFImpl for SparkFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let n = arg_types.len();
        if n < self.min_args || n > self.max_args {
            let want = if self.min_args == self.max_args {
                format!("{}", self.min_args)
            } else {
                format!("{} to {}", self.min_args, self.max_args)
            };
            return Err(DataFusionError::Plan(format!(
                "[WRONG_NUM_ARGS] `{}` takes {want} arguments, got {n}",
                self.name
            )));
        }
        // The type of every argument the function takes; a call passes
        // the first `n`.
        let mut types = match &self.kind {
            Kind::Part(_) => vec![temporal_arg(&arg_types[0])],
            Kind::DateFormat => vec![temporal_arg(&arg_types[0]), DataType::Utf8],
            Kind::ToDate { .. } | Kind::ToTimestamp { .. } => {
                let first = match is_temporal(&arg_types[0]) {
                    true => arg_types[0].clone(),
                    false => DataType::Utf8,
                };
                vec![first, DataType::Utf8]
            }
            Kind::MonthsBetween => vec![
                temporal_arg(&arg_types[0]),
                temporal_arg(&arg_types[1]),
                DataType::Boolean,
            ],
            Kind::RegexpExtract | Kind::Split => {
                vec![DataType::Utf8, DataType::Utf8, DataType::Int32]
            }
            Kind::RegexpReplace => vec![
                DataType::Utf8,
                DataType::Utf8,
                DataType::Utf8,
                DataType::Int32,
            ],
            Kind::Log | Kind::Ln | Kind::Log10 | Kind::Log2 => vec![DataType::Float64; n],
            Kind::Round { .. } => {
                let first = match &arg_types[0] {
                    t if t.is_numeric() => t.clone(),
                    t if *t == DataType::Null || is_string(t) => DataType::Float64,
                    other => {
                        return Err(DataFusionError::Plan(format!(
                            "[DATATYPE_MISMATCH] `{}` needs a number, got {other}",
                            self.name
                        )));
                    }
                };
                vec![first, DataType::Int32]
            }
            Kind::MonotonicId(_) => vec![],
        };
        types.truncate(n);
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match &self.kind {
            Kind::Part(_) => DataType::Int32,
            Kind::DateFormat | Kind::RegexpExtract | Kind::RegexpReplace => DataType::Utf8,
            Kind::ToDate { .. } => DataType::Date32,
            Kind::ToTimestamp { .. } => spark_timestamp(),
            Kind::MonthsBetween | Kind::Log | Kind::Ln | Kind::Log10 | Kind::Log2 => {
                DataType::Float64
            }
            Kind::Split => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Kind::Round { .. } => round_type(&arg_types[0], None),
            Kind::MonotonicId(_) => DataType::Int64,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = match (&self.kind, types.first()) {
            // Spark: round(decimal(p, s), d) is decimal(p - s + d' + 1, d')
            // with d' = min(d, s), at least 0.
            (Kind::Round { .. }, Some(DataType::Decimal128(p, s))) => {
                let d = match args.scalar_arguments.get(1) {
                    Some(Some(ScalarValue::Int32(Some(d)))) => *d,
                    Some(Some(v)) => match v.cast_to(&DataType::Int32) {
                        Ok(ScalarValue::Int32(Some(d))) => d,
                        _ => 0,
                    },
                    _ => 0,
                };
                let scale = d.min(i32::from(*s)).max(0);
                let precision = (i32::from(*p) - i32::from(*s) + scale + 1).clamp(1, 38);
                DataType::Decimal128(precision as u8, scale as i8)
            }
            _ => self.return_type(&types)?,
        };
        Ok(Arc::new(Field::new(self.name, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let out = match &self.kind {
            Kind::MonotonicId(counter) => {
                let start = counter
                    .0
                    .fetch_add(args.number_rows as u64, Ordering::Relaxed);
                let values: Int64Array = (0..args.number_rows as u64)
                    .map(|i| Some((start + i) as i64))
                    .collect();
                return Ok(ColumnarValue::Array(Arc::new(values)));
            }
            Kind::DateFormat => {
                let pattern = constant_string(self.name, &args.args[1])?;
                let items = match pattern {
                    Some(p) => Some(chrono_items(&spark_pattern(&p)?)?),
                    None => None,
                };
                let values = args.args[0].to_array(rows)?;
                date_format(&values, items.as_deref())?
            }
            Kind::ToDate { try_ } | Kind::ToTimestamp { try_ } => {
                let values = args.args[0].to_array(rows)?;
                let pattern = match args.args.get(1) {
                    Some(p) => match constant_string(self.name, p)? {
                        Some(p) => Some(spark_pattern(&p)?),
                        None => return null_result(self, &args, rows),
                    },
                    None => None,
                };
                let to_date = matches!(self.kind, Kind::ToDate { .. });
                parse_temporal(&values, pattern.as_deref(), to_date, *try_)?
            }
            Kind::Part(part) => {
                let values = args.args[0].to_array(rows)?;
                part_of(&values, *part)?
            }
            Kind::MonthsBetween => {
                let a = args.args[0].to_array(rows)?;
                let b = args.args[1].to_array(rows)?;
                let round_off = match args.args.get(2) {
                    Some(ColumnarValue::Scalar(ScalarValue::Boolean(v))) => v.unwrap_or(true),
                    Some(_) => {
                        return exec_err!("months_between needs a constant roundOff");
                    }
                    None => true,
                };
                months_between(&a, &b, round_off)?
            }
            Kind::RegexpExtract => {
                let values = args.args[0].to_array(rows)?;
                let Some(pattern) = constant_string(self.name, &args.args[1])? else {
                    return null_result(self, &args, rows);
                };
                let group = match args.args.get(2) {
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(Some(i)))) => *i,
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(None))) => {
                        return null_result(self, &args, rows);
                    }
                    Some(_) => return exec_err!("regexp_extract needs a constant group index"),
                    None => 1,
                };
                regexp_extract(&values, &pattern, group)?
            }
            Kind::RegexpReplace => {
                let values = args.args[0].to_array(rows)?;
                let (Some(pattern), Some(replacement)) = (
                    constant_string(self.name, &args.args[1])?,
                    constant_string(self.name, &args.args[2])?,
                ) else {
                    return null_result(self, &args, rows);
                };
                let position = match args.args.get(3) {
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(Some(p)))) => *p,
                    Some(_) => return exec_err!("regexp_replace needs a constant position"),
                    None => 1,
                };
                regexp_replace(&values, &pattern, &replacement, position)?
            }
            Kind::Split => {
                let values = args.args[0].to_array(rows)?;
                let Some(pattern) = constant_string(self.name, &args.args[1])? else {
                    return null_result(self, &args, rows);
                };
                let limit = match args.args.get(2) {
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(Some(l)))) => *l,
                    Some(_) => return exec_err!("split needs a constant limit"),
                    None => -1,
                };
                split(&values, &pattern, limit)?
            }
            Kind::Log | Kind::Ln | Kind::Log10 | Kind::Log2 => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let mut arrays: Vec<ArrayRef> = arrays
                    .into_iter()
                    .map(|a| {
                        if a.len() == rows {
                            Ok(a)
                        } else {
                            expand(&a, rows)
                        }
                    })
                    .collect::<Result<_>>()?;
                let base = match self.kind {
                    Kind::Log10 => Some(10.0),
                    Kind::Log2 => Some(2.0),
                    _ => None,
                };
                if let Some(base) = base {
                    arrays.insert(0, Arc::new(Float64Array::from(vec![base; rows])));
                }
                log(&arrays)?
            }
            Kind::Round { even } => {
                let values = args.args[0].to_array(rows)?;
                let scale = match args.args.get(1) {
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(Some(s)))) => *s,
                    Some(ColumnarValue::Scalar(ScalarValue::Int32(None))) => {
                        return null_result(self, &args, rows);
                    }
                    Some(_) => {
                        return exec_err!("{} needs a constant scale", self.name);
                    }
                    None => 0,
                };
                round(&values, scale, *even, args.return_type())?
            }
        };
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

fn expand(a: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    let v = ScalarValue::try_from_array(a, 0)?;
    v.to_array_of_size(rows)
}

fn null_result(f: &SparkFn, args: &ScalarFunctionArgs, rows: usize) -> Result<ColumnarValue> {
    let t = f.return_type(
        &args
            .arg_fields
            .iter()
            .map(|a| a.data_type().clone())
            .collect::<Vec<_>>(),
    )?;
    let null = ScalarValue::try_from(&t)?;
    Ok(if rows == 1 {
        ColumnarValue::Scalar(null)
    } else {
        ColumnarValue::Array(null.to_array_of_size(rows)?)
    })
}

/// A constant string argument (patterns): `None` for NULL.
fn constant_string(name: &str, v: &ColumnarValue) -> Result<Option<String>> {
    match v {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => Ok(s.clone()),
        ColumnarValue::Scalar(ScalarValue::Null) => Ok(None),
        _ => exec_err!("{name} needs a constant pattern (a literal string), not a column"),
    }
}

// ---------------------------------------------------------------------------
// Datetime patterns
// ---------------------------------------------------------------------------

/// A Spark datetime pattern (`yyyy-MM-dd HH:mm:ss`, `MMM d, yyyy`,
/// `EEEE`, `'quoted'` text) as a chrono format string. Timestamps are in
/// UTC, so zone letters print UTC's names and offsets.
pub fn spark_pattern(pattern: &str) -> Result<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let literal = |out: &mut String, c: char| {
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            // Quoted text up to the closing quote ('' inside is a quote).
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(pattern_error(pattern, "an unclosed quote"));
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        literal(&mut out, c);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if c == '[' || c == ']' {
            // Optional sections: printed, parsed as if present.
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let spec: &str = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('Y', 2) => "%g",
            ('Y', _) => "%G",
            ('M' | 'L', 1) => "%-m",
            ('M' | 'L', 2) => "%m",
            ('M' | 'L', 3) => "%b",
            ('M' | 'L', _) => "%B",
            ('d', 1) => "%-d",
            ('d', 2) => "%d",
            ('D', 1 | 2) => "%-j",
            ('D', 3) => "%j",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('a', 1) => "%p",
            ('H', 1) => "%-H",
            ('H', 2) => "%H",
            ('h', 1) => "%-I",
            ('h', 2) => "%I",
            ('m', 1) => "%-M",
            ('m', 2) => "%M",
            ('s', 1) => "%-S",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('Z', 1..=3) | ('x', 2) => "%z",
            ('x', 3) => "%:z",
            ('x', 1) => "+00",
            ('X', _) => "Z",
            ('z', 1..=3) => "UTC",
            ('V', 2) => "UTC",
            ('O', 1) => "GMT",
            ('G', 1..=3) => "AD",
            _ => {
                return Err(pattern_error(
                    pattern,
                    &format!("the letter '{c}' {n} time(s), which fairway does not support"),
                ));
            }
        };
        out.push_str(spec);
    }
    Ok(out)
}

fn pattern_error(pattern: &str, what: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "[INVALID_DATETIME_PATTERN] the datetime pattern '{pattern}' has {what}"
    ))
}

fn chrono_items(format: &str) -> Result<Vec<Item<'static>>> {
    let items: Vec<Item<'static>> = StrftimeItems::new(format)
        .map(|item| item.to_owned())
        .collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return exec_err!("invalid datetime format '{format}'");
    }
    Ok(items)
}

/// Dates and timestamps (any unit, any zone) as UTC date-times.
fn date_times(values: &ArrayRef) -> Result<Vec<Option<NaiveDateTime>>> {
    let micros = cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let micros = micros.as_primitive::<TimestampMicrosecondType>();
    Ok(micros
        .iter()
        .map(|v| {
            v.and_then(DateTime::from_timestamp_micros)
                .map(|d| d.naive_utc())
        })
        .collect())
}

fn date_format(values: &ArrayRef, items: Option<&[Item<'static>]>) -> Result<ArrayRef> {
    let Some(items) = items else {
        return Ok(Arc::new(StringArray::new_null(values.len())));
    };
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 10);
    let mut text = String::new();
    for v in date_times(values)? {
        match v {
            None => out.append_null(),
            Some(d) => {
                text.clear();
                if write!(text, "{}", d.format_with_items(items.iter())).is_err() {
                    return exec_err!("cannot format {d} with this pattern");
                }
                out.append_value(&text);
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `to_date`/`to_timestamp`: strings parsed with `format` (a chrono
/// format from a Spark pattern), or as Spark casts them without one.
fn parse_temporal(
    values: &ArrayRef,
    format: Option<&str>,
    to_date: bool,
    try_: bool,
) -> Result<ArrayRef> {
    let target = if to_date {
        DataType::Date32
    } else {
        spark_timestamp()
    };
    if is_temporal(values.data_type()) && format.is_none() {
        return Ok(cast(values, &target)?);
    }
    let strings = cast(values, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    let items = format.map(chrono_items).transpose()?;
    let mut micros: Vec<Option<i64>> = Vec::with_capacity(strings.len());
    for s in strings.iter() {
        let Some(s) = s else {
            micros.push(None);
            continue;
        };
        let parsed = match &items {
            Some(items) => parse_with(s.trim(), items),
            None => parse_default(s.trim()),
        };
        match parsed {
            Some(d) => micros.push(Some(d.and_utc().timestamp_micros())),
            None if try_ => micros.push(None),
            None => {
                let what = if to_date { "date" } else { "timestamp" };
                return exec_err!(
                    "[CANNOT_PARSE_TIMESTAMP] Text '{s}' could not be parsed as a {what}{}. \
                     Use try_to_{what} to get NULL instead",
                    format
                        .map(|_| " with the given pattern")
                        .unwrap_or_default()
                );
            }
        }
    }
    let ts = TimestampMicrosecondArray::from(micros).with_timezone("UTC");
    Ok(if to_date {
        cast(&ts, &DataType::Date32)?
    } else {
        Arc::new(ts)
    })
}

fn parse_with(s: &str, items: &[Item<'static>]) -> Option<NaiveDateTime> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    if parsed.year().is_none() && parsed.year_div_100().is_none() && parsed.year_mod_100().is_none()
    {
        // Spark's default year is 1970.
        parsed.set_year(1970).ok()?;
    }
    if parsed.month().is_none() && parsed.ordinal().is_none() && parsed.isoweek().is_none() {
        parsed.set_month(1).ok()?;
    }
    if parsed.day().is_none() && parsed.ordinal().is_none() && parsed.weekday().is_none() {
        parsed.set_day(1).ok()?;
    }
    let date = parsed.to_naive_date().ok()?;
    let time = parsed.to_naive_time().unwrap_or(chrono::NaiveTime::MIN);
    Some(date.and_time(time))
}

/// Spark's cast of a string to a date or timestamp: `yyyy`, `yyyy-[m]m`,
/// `yyyy-[m]m-[d]d`, then optionally ` ` or `T` and a time.
fn parse_default(s: &str) -> Option<NaiveDateTime> {
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim())),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = match time {
        None | Some("") => chrono::NaiveTime::MIN,
        Some(t) => {
            let t = t.trim_end_matches('Z');
            ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
                .iter()
                .find_map(|f| chrono::NaiveTime::parse_from_str(t, f).ok())?
        }
    };
    Some(date.and_time(time))
}

fn part_of(values: &ArrayRef, part: Part) -> Result<ArrayRef> {
    let values = if is_temporal(values.data_type()) {
        Arc::clone(values)
    } else {
        cast(values, &spark_timestamp())?
    };
    let arrow_part = match part {
        Part::Year => DatePart::Year,
        Part::Month => DatePart::Month,
        Part::Day => DatePart::Day,
        Part::DayOfWeek => DatePart::DayOfWeekSunday1,
        Part::WeekDay => DatePart::DayOfWeekMonday0,
        Part::DayOfYear => DatePart::DayOfYear,
        Part::Quarter => DatePart::Quarter,
        Part::WeekOfYear => DatePart::Week,
        Part::Hour => DatePart::Hour,
        Part::Minute => DatePart::Minute,
        Part::Second => DatePart::Second,
    };
    Ok(date_part(&values, arrow_part)?)
}

fn last_day_of_month(d: NaiveDate) -> bool {
    d.succ_opt().is_none_or(|n| n.month() != d.month())
}

fn months_between(a: &ArrayRef, b: &ArrayRef, round_off: bool) -> Result<ArrayRef> {
    let a = date_times(a)?;
    let b = date_times(b)?;
    let out: Float64Array = a
        .iter()
        .zip(&b)
        .map(|(a, b)| {
            let (a, b) = ((*a)?, (*b)?);
            let months = (a.year() * 12 + a.month() as i32) - (b.year() * 12 + b.month() as i32);
            if a.day() == b.day() || (last_day_of_month(a.date()) && last_day_of_month(b.date())) {
                return Some(months as f64);
            }
            let seconds =
                |d: NaiveDateTime| d.day() as f64 * 86_400.0 + d.num_seconds_from_midnight() as f64;
            let diff = months as f64 + (seconds(a) - seconds(b)) / (31.0 * 86_400.0);
            Some(if round_off {
                (diff * 1e8).round() / 1e8
            } else {
                diff
            })
        })
        .collect();
    Ok(Arc::new(out))
}

// ---------------------------------------------------------------------------
// Regular expressions
// ---------------------------------------------------------------------------

fn regex(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| {
        DataFusionError::Execution(format!(
            "[INVALID_PARAMETER_VALUE.PATTERN] the regular expression '{pattern}' is not \
             valid here (fairway uses Rust's regex syntax: no look-around or \
             back-references): {e}"
        ))
    })
}

fn strings(values: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(values, &DataType::Utf8)?)
}

fn regexp_extract(values: &ArrayRef, pattern: &str, group: i32) -> Result<ArrayRef> {
    let re = regex(pattern)?;
    let groups = re.captures_len() as i32 - 1;
    if group < 0 || group > groups {
        return exec_err!(
            "[INVALID_PARAMETER_VALUE.REGEX_GROUP_INDEX] regexp_extract: the group index \
             {group} is out of range: the pattern has {groups} group(s)"
        );
    }
    let values = strings(values)?;
    let out: StringArray = values
        .as_string::<i32>()
        .iter()
        .map(|s| {
            s.map(|s| match re.captures(s) {
                Some(c) => c
                    .get(group as usize)
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
                None => String::new(),
            })
        })
        .collect();
    Ok(Arc::new(out))
}

/// A Java replacement string (`$1`, `\$`) in Rust's syntax (`${1}`, `$$`).
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn regexp_replace(
    values: &ArrayRef,
    pattern: &str,
    replacement: &str,
    position: i32,
) -> Result<ArrayRef> {
    if position < 1 {
        return exec_err!("regexp_replace: the position must be positive, got {position}");
    }
    let re = regex(pattern)?;
    let replacement = java_replacement(replacement);
    let values = strings(values)?;
    let out: StringArray = values
        .as_string::<i32>()
        .iter()
        .map(|s| {
            s.map(|s| {
                let skip = s
                    .char_indices()
                    .nth(position as usize - 1)
                    .map_or(s.len(), |(i, _)| i);
                let (head, tail) = s.split_at(skip);
                format!("{head}{}", re.replace_all(tail, replacement.as_str()))
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn split(values: &ArrayRef, pattern: &str, limit: i32) -> Result<ArrayRef> {
    let re = regex(pattern)?;
    let values = strings(values)?;
    let mut out = ListBuilder::new(StringBuilder::new());
    for s in values.as_string::<i32>().iter() {
        let Some(s) = s else {
            out.append(false);
            continue;
        };
        if pattern.is_empty() {
            // Java splits an empty pattern into characters.
            let chars: Vec<char> = s.chars().collect();
            let take = if limit > 0 {
                (limit as usize).min(chars.len())
            } else {
                chars.len()
            };
            for (i, c) in chars.iter().enumerate().take(take) {
                if limit > 0 && i + 1 == take {
                    out.values()
                        .append_value(chars[i..].iter().collect::<String>());
                } else {
                    out.values().append_value(c.to_string());
                }
            }
        } else if limit > 0 {
            for part in re.splitn(s, limit as usize) {
                out.values().append_value(part);
            }
        } else {
            for part in re.split(s) {
                out.values().append_value(part);
            }
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/// `log(x)` is the natural logarithm; `log(base, x)` Spark's order. Not
/// positive arguments give NULL.
fn log(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let f = |a: &ArrayRef| -> Result<Float64Array> {
        Ok(cast(a, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    };
    let ln = |x: f64| if x > 0.0 { Some(x.ln()) } else { None };
    let out: Float64Array = match arrays {
        [x] => f(x)?.iter().map(|x| x.and_then(ln)).collect(),
        [base, x] => f(base)?
            .iter()
            .zip(f(x)?.iter())
            .map(|(b, x)| {
                let (b, x) = (ln(b?)?, ln(x?)?);
                Some(x / b)
            })
            .collect(),
        _ => return exec_err!("log takes one or two arguments"),
    };
    Ok(Arc::new(out))
}

fn round_type(t: &DataType, _scale: Option<i32>) -> DataType {
    match t {
        DataType::Float32 => DataType::Float32,
        DataType::Float64 | DataType::Null => DataType::Float64,
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
        other if other.is_integer() => other.clone(),
        _ => DataType::Float64,
    }
}

/// `x` rounded to `scale` digits as Spark rounds: a double is the decimal
/// its shortest representation prints as (`2.675` rounds to `2.68`), then
/// HALF_UP (ties away from zero) or HALF_EVEN.
fn round_decimal_text(x: f64, scale: i32, even: bool) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Rust prints a double's shortest decimal in full, never as 1e-7.
    round_decimal_string(&format!("{x}"), scale, even)
        .parse()
        .unwrap_or(x)
}

fn round(values: &ArrayRef, scale: i32, even: bool, out_type: &DataType) -> Result<ArrayRef> {
    match values.data_type() {
        DataType::Float64 | DataType::Float32 => {
            let f = cast(values, &DataType::Float64)?;
            let out: Float64Array = f
                .as_primitive::<Float64Type>()
                .unary(|x| round_decimal_text(x, scale, even));
            Ok(cast(&out, out_type)?)
        }
        t if t.is_integer() => {
            if scale >= 0 {
                return Ok(Arc::clone(values));
            }
            let i = cast(values, &DataType::Int64)?;
            let factor = 10i64.checked_pow((-scale) as u32).unwrap_or(i64::MAX);
            let out: Int64Array = i.as_primitive::<Int64Type>().unary(|v| {
                let q = v / factor;
                let r = v % factor;
                let half = factor / 2;
                let away = if even {
                    r.abs() > half || (r.abs() == half && q % 2 != 0)
                } else {
                    r.abs() >= half && factor > 1
                };
                let q = if away { q + v.signum() } else { q };
                q.saturating_mul(factor)
            });
            Ok(cast(&out, out_type)?)
        }
        DataType::Decimal128(_, s) => {
            // Decimal text rounding keeps exact digits.
            let s = *s as i32;
            let options = CastOptions {
                safe: false,
                format_options: FormatOptions::default(),
            };
            let text = cast_with_options(values, &DataType::Utf8, &options)?;
            let rounded: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|v| round_decimal_string(v, scale.min(s), even)))
                .collect();
            Ok(cast_with_options(&rounded, out_type, &options)?)
        }
        DataType::Null => Ok(Arc::new(Float64Array::new_null(values.len()))),
        other => exec_err!("round needs a number, got {other}"),
    }
}

/// A decimal's text rounded to `scale` digits after the point.
fn round_decimal_string(text: &str, scale: i32, even: bool) -> String {
    let negative = text.starts_with('-');
    let body = text.trim_start_matches(['-', '+']);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let point = int.len() as i32;
    let keep = point + scale;
    if keep < 0 {
        // Every digit is below the rounding place.
        return "0".to_string();
    }
    if keep as usize >= digits.len() {
        return text.to_string();
    }
    let keep = keep as usize;
    let mut kept = digits[..keep].to_vec();
    let first = digits[keep];
    let rest = digits[keep + 1..].iter().any(|&d| d != 0);
    let odd = kept.last().is_some_and(|d| d % 2 == 1);
    let up = if even {
        first > 5 || (first == 5 && (rest || odd))
    } else {
        first >= 5
    };
    let mut point = point;
    if up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                point += 1;
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    // Zeros for the dropped integer digits (a negative scale).
    while (kept.len() as i32) < point {
        kept.push(0);
    }
    let int_len = point.max(0) as usize;
    let mut s = String::new();
    if negative && kept.iter().any(|&d| d != 0) {
        s.push('-');
    }
    let int_digits: String = kept[..int_len.min(kept.len())]
        .iter()
        .map(|d| (b'0' + d) as char)
        .collect();
    s.push_str(if int_digits.is_empty() {
        "0"
    } else {
        &int_digits
    });
    if kept.len() > int_len {
        s.push('.');
        s.extend(kept[int_len..].iter().map(|d| (b'0' + d) as char));
    }
    s
}

/// A `Date32Array` of `days` (tests).
#[cfg(test)]
fn dates(days: &[i32]) -> ArrayRef {
    Arc::new(fairway_engine::arrow::array::Date32Array::from(
        days.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> i32 {
        (NaiveDate::from_ymd_opt(y, m, d).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days() as i32
    }

    fn format_one(days: i32, pattern: &str) -> String {
        let items = chrono_items(&spark_pattern(pattern).unwrap()).unwrap();
        let out = date_format(&dates(&[days]), Some(&items)).unwrap();
        out.as_string::<i32>().value(0).to_string()
    }

    #[test]
    fn spark_patterns_format_as_spark_does() {
        let d = date(2024, 1, 5);
        assert_eq!(format_one(d, "yyyy-MM"), "2024-01");
        assert_eq!(format_one(d, "dd/MM/yyyy"), "05/01/2024");
        assert_eq!(format_one(d, "MMM d, yyyy"), "Jan 5, 2024");
        assert_eq!(format_one(d, "EEEE"), "Friday");
        assert_eq!(format_one(d, "EEE, MMMM yy"), "Fri, January 24");
        assert_eq!(
            format_one(d, "yyyy-MM-dd'T'HH:mm:ss"),
            "2024-01-05T00:00:00"
        );
        assert_eq!(format_one(d, "'100%' D"), "100% 5");
        assert_eq!(format_one(d, "''yy''"), "'24'");
        assert!(spark_pattern("yyyy-ww").is_err());
        assert!(spark_pattern("'open").is_err());
    }

    #[test]
    fn strings_parse_with_patterns_and_spark_defaults() {
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("05/01/2024"), None]));
        let out =
            parse_temporal(&s, Some(&spark_pattern("dd/MM/yyyy").unwrap()), true, false).unwrap();
        let out = out.as_primitive::<fairway_engine::arrow::datatypes::Date32Type>();
        assert_eq!(out.value(0), date(2024, 1, 5));
        assert!(out.is_null(1));
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["nope"]));
        assert!(parse_temporal(&bad, None, true, false).is_err());
        assert!(parse_temporal(&bad, None, true, true).unwrap().is_null(0));
        assert_eq!(
            parse_default("2024-1-5 10:30:00"),
            NaiveDate::from_ymd_opt(2024, 1, 5)
                .unwrap()
                .and_hms_opt(10, 30, 0)
        );
        assert_eq!(
            parse_default("2024"),
            NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
        );
    }

    #[test]
    fn months_between_counts_whole_months_on_equal_and_last_days() {
        let a = dates(&[date(2024, 3, 31), date(2024, 3, 15), date(1997, 2, 28)]);
        let b = dates(&[date(2024, 2, 29), date(2024, 1, 15), date(1996, 10, 30)]);
        let out = months_between(&a, &b, true).unwrap();
        let out = out.as_primitive::<Float64Type>();
        assert_eq!(out.value(0), 1.0);
        assert_eq!(out.value(1), 2.0);
        // Spark's documented example (at midnight): 3.94959677.
        assert_eq!(out.value(2), 3.93548387);
    }

    #[test]
    fn doubles_round_as_their_decimal_text() {
        assert_eq!(round_decimal_text(2.5, 0, false), 3.0);
        assert_eq!(round_decimal_text(-2.5, 0, false), -3.0);
        assert_eq!(round_decimal_text(2.5, 0, true), 2.0);
        assert_eq!(round_decimal_text(0.125, 2, false), 0.13);
        assert_eq!(round_decimal_text(2.675, 2, false), 2.68);
        assert_eq!(round_decimal_text(1234.5678, -2, false), 1200.0);
        assert_eq!(round_decimal_text(9.99, 1, false), 10.0);
        assert_eq!(round_decimal_text(0.004, 2, false), 0.0);
        assert_eq!(round_decimal_string("12.345", 2, false), "12.35");
        assert_eq!(round_decimal_string("-12.345", 2, true), "-12.34");
        assert_eq!(round_decimal_string("99.95", 1, false), "100.0");
        assert_eq!(round_decimal_string("1250", -2, true), "1200");
        assert_eq!(round_decimal_string("4.25", -2, false), "0");
        assert_eq!(round_decimal_text(-0.4, 0, false), 0.0);
    }

    #[test]
    fn java_replacements_become_rust_ones() {
        assert_eq!(java_replacement("$1-$2"), "${1}-${2}");
        assert_eq!(java_replacement("\\$x"), "$$x");
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a1b22c"]));
        let out = regexp_replace(&s, "(\\d+)", "<$1>", 1).unwrap();
        assert_eq!(out.as_string::<i32>().value(0), "a<1>b<22>c");
    }

    #[test]
    fn splits_keep_trailing_empty_strings_and_honour_limits() {
        let s: ArrayRef = Arc::new(StringArray::from(vec!["a,b,,c,"]));
        let all = split(&s, ",", -1).unwrap();
        let list = all.as_list::<i32>().value(0);
        let items: Vec<_> = list.as_string::<i32>().iter().flatten().collect();
        assert_eq!(items, vec!["a", "b", "", "c", ""]);
        let two = split(&s, ",", 2).unwrap();
        let list = two.as_list::<i32>().value(0);
        let items: Vec<_> = list.as_string::<i32>().iter().flatten().collect();
        assert_eq!(items, vec!["a", "b,,c,"]);
    }
}
