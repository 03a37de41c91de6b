//! The allocation file (Spark's `fairscheduler.xml`): pools and their
//! settings.
//!
//! The format and the checks are documented on [`parse_allocation_file`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::SchedulerError;
use crate::pool::{PoolConfig, SchedulingMode, java_trim};

/// The pools of an allocation file, and what lenient parsing had to fix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// One pool per `<pool>` element, in document order.
    pub pools: Vec<PoolConfig>,
    /// One line per problem that did not fail the parse (bad value replaced
    /// by its default, duplicate name, ...), naming file, line and pool.
    pub warnings: Vec<String>,
}

/// Why an allocation file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AllocationError {
    /// The file cannot be read (missing, unreadable, not UTF-8).
    #[error("cannot read allocation file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed XML.
    #[error(
        "allocation file {} is not well-formed XML (line {line}, column {column}): {message}",
        path.display()
    )]
    Xml {
        /// The file.
        path: PathBuf,
        /// Line of the error, from 1.
        line: u32,
        /// Column of the error, from 1.
        column: u32,
        /// The parser's message.
        message: String,
    },
    /// A pool setting that Spark would replace by its default (strict mode
    /// only).
    #[error(
        "allocation file {}, line {line}: pool {pool:?}: invalid <{element}> value {value:?}: {reason}",
        path.display()
    )]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// Line of the element, from 1.
        line: u32,
        /// The pool's name.
        pool: String,
        /// `minShare`, `weight` or `schedulingMode`.
        element: String,
        /// The value, trimmed.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two pools with the same name (strict mode only).
    #[error(
        "allocation file {}: pool {name:?} is defined twice, at lines {first_line} and {second_line}",
        path.display()
    )]
    DuplicatePool {
        /// The file.
        path: PathBuf,
        /// The pool name.
        name: String,
        /// Line of the earlier `<pool>` element.
        first_line: u32,
        /// Line of the later one.
        second_line: u32,
    },
}

impl From<AllocationError> for SchedulerError {
    /// An allocation file that cannot be used is a configuration error; the
    /// message keeps the file, line, pool and value.
    fn from(error: AllocationError) -> Self {
        Self::InvalidConfig(error.to_string())
    }
}

/// Reads and parses an allocation file: the pools to put in
/// [`SchedulerConfig::pools`](crate::SchedulerConfig::pools) (with
/// `allocation_file_loaded: true`).
///
/// # Format (as Spark reads it)
///
/// ```xml
/// <?xml version="1.0"?>
/// <allocations>
///   <pool name="dashboards">
///     <schedulingMode>FAIR</schedulingMode>
///     <weight>3</weight>
///     <minShare>4</minShare>
///   </pool>
///   <pool name="etl">
///     <maxShare>8</maxShare>
///     <maxRunningJobs>2</maxRunningJobs>
///     <maxQueuedJobs>10</maxQueuedJobs>
///     <memory>2GiB</memory>
///     <timeout>30m</timeout>
///   </pool>
/// </allocations>
/// ```
///
/// * Any well-formed XML document (UTF-8); the root element's name is not
///   checked.
/// * Every element named `pool` anywhere (the root included, pools nested in
///   pools included) is one **top-level** pool, in document order. The file
///   cannot nest pools.
/// * The `name` attribute is the pool name, as-is (not trimmed,
///   case-sensitive); without it the name is empty.
/// * Direct child elements `schedulingMode`, `weight` and `minShare` set the
///   pool's mode, weight and minimum share; absent ones keep Spark's defaults
///   (FIFO, 1, 0). Other elements are ignored (with a warning). A repeated
///   element counts with the texts of all its copies concatenated
///   (`<weight>2</weight><weight>3</weight>` is 23), as in Spark.
/// * fairway's own elements, which Spark ignores (so the same file works
///   in Spark): `maxShare` (most running tasks, >= 1), `maxRunningJobs`
///   (>= 1), `maxQueuedJobs` (>= 0), `memory` (a size such as `512MiB`,
///   `2GiB`; > 0) and `timeout` (a duration such as `30s`, `5m`; > 0); see
///   [`PoolConfig`]. A bad value fails a strict parse and is ignored (no
///   limit) with a warning otherwise.
/// * Values are trimmed like Java's `String.trim` (characters up to U+0020).
///   Numbers are parsed like Java's `Integer.parseInt`: an optional `+` or
///   `-`, decimal digits, within `i32`. The mode is upper-cased and must be
///   `FAIR` or `FIFO`.
///
/// # Errors
///
/// [`AllocationError::Io`] when the file cannot be read and
/// [`AllocationError::Xml`] when it is not well-formed XML, in both modes
/// (Spark fails on these too); in strict mode also
/// [`AllocationError::InvalidValue`] and [`AllocationError::DuplicatePool`]
/// as below. A strict parse stops at the first problem in document order.
///
/// # Strict and lenient parsing
///
/// Spark never rejects a bad value: it logs a warning and uses the default.
/// With `strict == false` we do the same (weight 1, minShare 0, FIFO) and
/// return the warning in [`Allocation::warnings`]. With `strict == true`
/// each such value is an [`AllocationError::InvalidValue`] naming the file,
/// line, pool, element and value. The cases are: a value that is empty or
/// only whitespace, a number that is not an `i32`, a mode other than FAIR or
/// FIFO (`NONE` included).
///
/// fairway is stricter than Spark in two more cases, by choice:
///
/// * **Degenerate numbers.** Strict mode also rejects `weight <= 0` and
///   `minShare < 0`, which Spark accepts (they produce infinite or NaN share
///   ratios and odd orders). Lenient mode keeps them, as Spark does, with a
///   warning.
/// * **Duplicate pool names.** Strict mode rejects them
///   ([`AllocationError::DuplicatePool`], naming both lines). Lenient mode
///   keeps both pools, as Spark does (jobs naming the pool go to the last
///   one; the first stays as an empty pool), with a warning.
///
/// Both modes also warn, without failing, about a pool with no `name`
/// attribute and about unknown child elements of a pool (which Spark
/// silently ignores: a misspelt `<minshare>` would otherwise go unnoticed).
/// Absent elements are neither errors nor warnings (Spark logs one).
///
/// Differences kept on purpose: the file must be UTF-8 (Spark's XML parser
/// honours other declared encodings), and numbers must use ASCII digits
/// (Java's `Integer.parseInt` also takes other Unicode decimal digits, to a
/// degree that depends on the JDK's Unicode version).
pub fn parse_allocation_file(path: &Path, strict: bool) -> Result<Allocation, AllocationError> {
    let text = std::fs::read_to_string(path).map_err(|source| AllocationError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, strict)
}

/// Parses the text of an allocation file as [`parse_allocation_file`]
/// does; `source_name` stands for the file in errors and warnings.
pub fn parse_allocation_str(
    text: &str,
    source_name: &str,
    strict: bool,
) -> Result<Allocation, AllocationError> {
    parse(text, Path::new(source_name), strict)
}

/// The pool settings the file format knows, in Spark's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setting {
    SchedulingMode,
    Weight,
    MinShare,
    MaxShare,
    MaxRunningJobs,
    MaxQueuedJobs,
    Memory,
    Timeout,
}

impl Setting {
    const ALL: [Self; 8] = [
        Self::SchedulingMode,
        Self::Weight,
        Self::MinShare,
        Self::MaxShare,
        Self::MaxRunningJobs,
        Self::MaxQueuedJobs,
        Self::Memory,
        Self::Timeout,
    ];

    fn from_element(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.element() == name)
    }

    fn element(self) -> &'static str {
        match self {
            Self::SchedulingMode => "schedulingMode",
            Self::Weight => "weight",
            Self::MinShare => "minShare",
            Self::MaxShare => "maxShare",
            Self::MaxRunningJobs => "maxRunningJobs",
            Self::MaxQueuedJobs => "maxQueuedJobs",
            Self::Memory => "memory",
            Self::Timeout => "timeout",
        }
    }
}

/// One pool setting as written: line of its first element, all texts.
struct Written {
    setting: Setting,
    line: u32,
    text: String,
}

/// A bad value: the error for strict mode, and the words that lenient mode
/// adds after it in its warning.
struct Problem {
    error: AllocationError,
    lenient: String,
}

fn parse(text: &str, path: &Path, strict: bool) -> Result<Allocation, AllocationError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(text, options).map_err(|error| {
        let position = match error {
            // These report 1:1; the end of the text is where they are.
            roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => {
                end_position(text)
            }
            _ => error.pos(),
        };
        AllocationError::Xml {
            path: path.to_path_buf(),
            line: position.row,
            column: position.col,
            message: error.to_string(),
        }
    })?;
    // `Document::text_pos_at` counts lines from the start of the text on
    // every call, which made a file of many pools quadratic to read. The
    // same line numbers (1 + newlines before the node), by binary search.
    let newlines: Vec<usize> = text.match_indices('\n').map(|(at, _)| at).collect();
    let line_of = |node: roxmltree::Node<'_, '_>| {
        let before = newlines.partition_point(|&at| at < node.range().start);
        u32::try_from(before + 1).unwrap_or(u32::MAX)
    };
    let file = path.display();

    let mut allocation = Allocation::default();
    let mut lines_by_name: HashMap<String, u32> = HashMap::new();
    let pools = document
        .descendants()
        .filter(|node| node.is_element() && node.tag_name().name() == "pool");
    for element in pools {
        let line = line_of(element);
        let name = match element.attribute("name") {
            Some(name) => name.to_string(),
            None => {
                allocation.warnings.push(format!(
                    "allocation file {file}, line {line}: pool has no name attribute; \
                     its name is empty"
                ));
                String::new()
            }
        };
        if let Some(first_line) = lines_by_name.insert(name.clone(), line) {
            let error = AllocationError::DuplicatePool {
                path: path.to_path_buf(),
                name: name.clone(),
                first_line,
                second_line: line,
            };
            if strict {
                return Err(error);
            }
            allocation.warnings.push(format!(
                "{error}; both are kept and jobs naming it go to the later one (as in Spark)"
            ));
        }

        // Spark reads `pool \ "weight"`: all direct children of that name,
        // texts concatenated. Kept in order of first appearance so that
        // problems are reported in document order.
        let mut written: Vec<Written> = Vec::new();
        // This pool's warnings with their lines, reported in line order.
        let mut warnings: Vec<(u32, String)> = Vec::new();
        for child in element.children().filter(|node| node.is_element()) {
            let child_name = child.tag_name().name();
            let Some(setting) = Setting::from_element(child_name) else {
                if child_name != "pool" {
                    let line = line_of(child);
                    warnings.push((
                        line,
                        format!(
                            "allocation file {file}, line {line}: pool {name:?}: unknown \
                             element <{child_name}> ignored"
                        ),
                    ));
                }
                continue;
            };
            let text: String = child
                .descendants()
                .filter(|node| node.is_text())
                .filter_map(|node| node.text())
                .collect();
            match written.iter_mut().find(|w| w.setting == setting) {
                Some(earlier) => earlier.text.push_str(&text),
                None => written.push(Written {
                    setting,
                    line: line_of(child),
                    text,
                }),
            }
        }

        let mut pool = PoolConfig::new(name.clone());
        for Written {
            setting,
            line,
            text,
        } in written
        {
            let value = java_trim(&text);
            let problem = |reason: String, lenient: String| Problem {
                error: AllocationError::InvalidValue {
                    path: path.to_path_buf(),
                    line,
                    pool: name.clone(),
                    element: setting.element().to_string(),
                    value: value.to_string(),
                    reason,
                },
                lenient,
            };
            let outcome = match setting {
                Setting::SchedulingMode => match parse_mode(value) {
                    Ok(mode) => {
                        pool.mode = mode;
                        None
                    }
                    Err(reason) => Some(problem(
                        reason,
                        "using the default schedulingMode FIFO".to_string(),
                    )),
                },
                Setting::MaxShare | Setting::MaxRunningJobs | Setting::MaxQueuedJobs => {
                    let least = usize::from(setting != Setting::MaxQueuedJobs);
                    match parse_java_int(value) {
                        Ok(number) if i64::from(number) >= least as i64 => {
                            let number = Some(number as usize);
                            match setting {
                                Setting::MaxShare => pool.max_share = number,
                                Setting::MaxRunningJobs => pool.max_running_jobs = number,
                                _ => pool.max_queued_jobs = number,
                            }
                            None
                        }
                        Ok(_) => Some(problem(
                            format!("{} must be at least {least}", setting.element()),
                            "ignored: no limit".to_string(),
                        )),
                        Err(reason) => Some(problem(reason, "ignored: no limit".to_string())),
                    }
                }
                Setting::Memory => match crate::units::parse_size(value) {
                    Ok(0) => Some(problem(
                        "a pool's memory must be more than 0".to_string(),
                        "ignored: the pool shares the session's memory".to_string(),
                    )),
                    Ok(bytes) => {
                        pool.memory = Some(bytes as u64);
                        None
                    }
                    Err(reason) => Some(problem(
                        reason,
                        "ignored: the pool shares the session's memory".to_string(),
                    )),
                },
                Setting::Timeout => match crate::units::parse_duration(value) {
                    Ok(d) if d.is_zero() => Some(problem(
                        "a timeout must be more than 0".to_string(),
                        "ignored: no timeout".to_string(),
                    )),
                    Ok(d) => {
                        pool.timeout = Some(d);
                        None
                    }
                    Err(reason) => Some(problem(reason, "ignored: no timeout".to_string())),
                },
                Setting::Weight | Setting::MinShare => {
                    let (target, default, least) = match setting {
                        Setting::Weight => (&mut pool.weight, 1, 1),
                        Setting::MinShare => (&mut pool.min_share, 0, 0),
                        _ => unreachable!("handled above"),
                    };
                    match parse_java_int(value) {
                        Err(reason) => Some(problem(
                            reason,
                            format!("using the default {} {default}", setting.element()),
                        )),
                        Ok(number) => {
                            *target = number;
                            (number < least).then(|| {
                                problem(
                                    format!(
                                        "{} must be at least {least} (Spark accepts it, but \
                                         share ratios become infinite or NaN)",
                                        setting.element()
                                    ),
                                    "kept as Spark does".to_string(),
                                )
                            })
                        }
                    }
                }
            };
            if let Some(Problem { error, lenient }) = outcome {
                if strict {
                    return Err(error);
                }
                warnings.push((line, format!("{error}; {lenient}")));
            }
        }
        warnings.sort_by_key(|&(line, _)| line);
        allocation
            .warnings
            .extend(warnings.into_iter().map(|(_, warning)| warning));
        allocation.pools.push(pool);
    }
    Ok(allocation)
}

/// Spark's rule: upper-cased (full Unicode case mapping, as Java's
/// `toUpperCase(Locale.ROOT)`), then exactly FAIR or FIFO.
fn parse_mode(value: &str) -> Result<SchedulingMode, String> {
    match value.to_uppercase().as_str() {
        "FAIR" => Ok(SchedulingMode::Fair),
        "FIFO" => Ok(SchedulingMode::Fifo),
        "" => Err("empty value; expected FAIR or FIFO".to_string()),
        "NONE" => Err("NONE is not a pool mode; expected FAIR or FIFO".to_string()),
        _ => Err("expected FAIR or FIFO".to_string()),
    }
}

/// Java's `Integer.parseInt` for ASCII digits: optional sign, at least one
/// digit, nothing else, within `i32`.
fn parse_java_int(value: &str) -> Result<i32, String> {
    if value.is_empty() {
        return Err("empty value; expected an integer".to_string());
    }
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal integer".to_string());
    }
    // `i32::from_str` takes the same syntax (sign, ASCII digits) and range.
    value
        .parse::<i32>()
        .map_err(|_| "out of range for a 32-bit integer".to_string())
}

/// Line and column just after the last character of `text`.
fn end_position(text: &str) -> roxmltree::TextPos {
    let line = text.matches('\n').count() + 1;
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let column = last_line.chars().count() + 1;
    roxmltree::TextPos::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::SchedulingMode::{Fair, Fifo};
    use crate::pool::pool;

    fn lenient(text: &str) -> Allocation {
        parse_allocation_str(text, "test.xml", false).expect("lenient parse")
    }

    fn strict(text: &str) -> Result<Allocation, AllocationError> {
        parse_allocation_str(text, "test.xml", true)
    }

    /// A pool element with the given children, strict-parsed.
    fn strict_pool(children: &str) -> Result<PoolConfig, AllocationError> {
        let text = format!("<allocations><pool name=\"p\">{children}</pool></allocations>");
        strict(&text).map(|allocation| allocation.pools[0].clone())
    }

    const EXAMPLE_A: &str = r#"<?xml version="1.0"?>
<allocations>
  <pool name="dashboards">
    <schedulingMode>FAIR</schedulingMode>
    <weight>3</weight>
    <minShare>4</minShare>
  </pool>
  <pool name="etl">
    <schedulingMode>FIFO</schedulingMode>
    <weight>1</weight>
    <minShare>0</minShare>
  </pool>
  <pool name="default">
    <schedulingMode>fair</schedulingMode>
  </pool>
</allocations>
"#;

    const EXAMPLE_B: &str = r#"<scheduler>
  <pool name="adhoc">
    <weight> 2 </weight>
    <minShare>two</minShare>
    <schedulingMode>ROUND_ROBIN</schedulingMode>
    <maxshare>10</maxshare>
    <pool name="adhoc-inner"><weight>5</weight></pool>
  </pool>
</scheduler>
"#;

    #[test]
    fn example_a_gives_the_documented_pools_in_both_modes() {
        let expected = vec![
            pool("dashboards", Fair, 4, 3),
            pool("etl", Fifo, 0, 1),
            pool("default", Fair, 0, 1),
        ];
        let allocation = lenient(EXAMPLE_A);
        assert_eq!(allocation.pools, expected);
        assert_eq!(allocation.warnings, Vec::<String>::new());
        assert_eq!(strict(EXAMPLE_A).unwrap().pools, expected);
    }

    #[test]
    fn example_b_lenient_falls_back_like_spark_with_warnings() {
        let allocation = lenient(EXAMPLE_B);
        assert_eq!(
            allocation.pools,
            vec![pool("adhoc", Fifo, 0, 2), pool("adhoc-inner", Fifo, 0, 5)]
        );
        let warnings = &allocation.warnings;
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert_eq!(
            warnings[0],
            "allocation file test.xml, line 4: pool \"adhoc\": invalid <minShare> value \"two\": \
             not a decimal integer; using the default minShare 0"
        );
        assert!(
            warnings[1]
                .contains("line 5: pool \"adhoc\": invalid <schedulingMode> value \"ROUND_ROBIN\"")
                && warnings[1].ends_with("using the default schedulingMode FIFO"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[2].contains("line 6: pool \"adhoc\": unknown element <maxshare>"),
            "{}",
            warnings[2]
        );
    }

    #[test]
    fn example_b_strict_names_pool_element_value_and_line() {
        let error = strict(EXAMPLE_B).unwrap_err();
        match &error {
            AllocationError::InvalidValue {
                path,
                line,
                pool,
                element,
                value,
                ..
            } => {
                assert_eq!(path, Path::new("test.xml"));
                assert_eq!(*line, 4);
                assert_eq!(pool, "adhoc");
                assert_eq!(element, "minShare");
                assert_eq!(value, "two");
            }
            other => panic!("expected InvalidValue, got {other:?}"),
        }
        let message = error.to_string();
        for part in ["test.xml", "line 4", "\"adhoc\"", "<minShare>", "\"two\""] {
            assert!(message.contains(part), "{part} missing in {message}");
        }
    }

    #[test]
    fn trimmed_values_and_any_case_modes_are_accepted() {
        let text = "<a>\n<pool name=\" spaced \">\n<weight>\n\t +7 \r\n</weight>\
                    <minShare>\r-0\t</minShare><schedulingMode> fAiR\n</schedulingMode>\
                    </pool><pool name=\"x\"><schedulingMode>Fifo</schedulingMode></pool></a>";
        let allocation = strict(text).unwrap();
        assert_eq!(
            allocation.pools,
            vec![pool(" spaced ", Fair, 0, 7), pool("x", Fifo, 0, 1)],
            "names are not trimmed"
        );
        assert!(allocation.warnings.is_empty());
        // Java upper-cases the dotless i to I, and so does Rust.
        assert_eq!(
            strict_pool("<schedulingMode>fa\u{131}r</schedulingMode>")
                .unwrap()
                .mode,
            Fair
        );
    }

    #[test]
    fn integers_parse_like_java_parse_int() {
        let weight =
            |text: &str| strict_pool(&format!("<weight>{text}</weight>")).map(|p| p.weight);
        assert_eq!(weight("2147483647").unwrap(), i32::MAX);
        assert_eq!(weight("+0012").unwrap(), 12);
        for bad in [
            "2147483648",
            "1.5",
            "1_000",
            "0x10",
            "+",
            "-",
            "1 2",
            "\u{a0}1",
            "\u{661}",
            "+-1",
        ] {
            assert!(
                matches!(weight(bad), Err(AllocationError::InvalidValue { .. })),
                "{bad:?} accepted"
            );
        }
        let min_share =
            |text: &str| strict_pool(&format!("<minShare>{text}</minShare>")).map(|p| p.min_share);
        assert_eq!(min_share("-0").unwrap(), 0);
        assert_eq!(min_share("0").unwrap(), 0);
    }

    #[test]
    fn empty_values_and_bad_modes_fail_strict_and_fall_back_lenient() {
        for (children, element) in [
            ("<weight/>", "weight"),
            ("<minShare>  \n </minShare>", "minShare"),
            ("<schedulingMode></schedulingMode>", "schedulingMode"),
            ("<schedulingMode>none</schedulingMode>", "schedulingMode"),
            (
                "<schedulingMode>FAIR FIFO</schedulingMode>",
                "schedulingMode",
            ),
        ] {
            match strict_pool(children) {
                Err(AllocationError::InvalidValue { element: e, .. }) => {
                    assert_eq!(e, element, "{children}")
                }
                other => panic!("{children}: expected InvalidValue, got {other:?}"),
            }
            let text = format!("<allocations><pool name=\"p\">{children}</pool></allocations>");
            let allocation = lenient(&text);
            assert_eq!(allocation.pools, vec![pool("p", Fifo, 0, 1)], "{children}");
            assert_eq!(allocation.warnings.len(), 1, "{children}");
            assert!(allocation.warnings[0].contains(element));
        }
    }

    #[test]
    fn degenerate_numbers_fail_strict_only() {
        for children in [
            "<weight>0</weight>",
            "<weight>-2</weight>",
            "<minShare>-1</minShare>",
        ] {
            let error = strict_pool(children).unwrap_err();
            assert!(error.to_string().contains("must be at least"), "{error}");
        }
        assert_eq!(strict_pool("<weight>1</weight>").unwrap().weight, 1);
        let allocation =
            lenient("<a><pool name=\"p\"><weight>0</weight><minShare>-1</minShare></pool></a>");
        assert_eq!(
            allocation.pools,
            vec![pool("p", Fifo, -1, 0)],
            "kept, as Spark"
        );
        assert_eq!(allocation.warnings.len(), 2);
        assert!(allocation.warnings[0].ends_with("kept as Spark does"));
    }

    #[test]
    fn repeated_elements_are_concatenated_like_spark() {
        let pool = strict_pool("<weight>2</weight><weight>3</weight>").unwrap();
        assert_eq!(pool.weight, 23);
        // Text in nested elements and CDATA counts; comments do not.
        let pool = strict_pool("<minShare>1<!-- x --><b>2</b><![CDATA[3]]></minShare>").unwrap();
        assert_eq!(pool.min_share, 123);
        // The error for a bad concatenation names the first element's line.
        let text = "<a><pool name=\"p\">\n<weight>1</weight>\n<weight>x</weight></pool></a>";
        match strict(text).unwrap_err() {
            AllocationError::InvalidValue { line, value, .. } => {
                assert_eq!((line, value.as_str()), (2, "1x"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pools_anywhere_become_top_level_and_names_are_raw() {
        let text = r#"<pool name="root-pool"><x><pool><weight>4</weight></pool></x>
            <allocations><pool name="Deep"/></allocations></pool>"#;
        let allocation = lenient(text);
        let names: Vec<&str> = allocation.pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["root-pool", "", "Deep"]);
        assert_eq!(allocation.pools[1].weight, 4);
        let warnings = &allocation.warnings;
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].contains("line 1: pool \"root-pool\": unknown element <x>"));
        assert!(warnings[1].contains("line 2: pool \"root-pool\": unknown element <allocations>"));
        assert!(warnings[2].contains("line 1: pool has no name attribute"));
        assert!(
            strict(text).is_ok(),
            "strict accepts what Spark accepts here"
        );
        // A document without pools is fine: no pools.
        assert_eq!(lenient("<allocations/>"), Allocation::default());
    }

    #[test]
    fn duplicate_names_fail_strict_and_are_kept_lenient() {
        let text = "<allocations>\n<pool name=\"a\"/>\n<pool name=\"b\"/>\n\
                    <pool name=\"a\"><weight>2</weight></pool>\n</allocations>";
        match strict(text).unwrap_err() {
            AllocationError::DuplicatePool {
                name,
                first_line,
                second_line,
                ..
            } => assert_eq!((name.as_str(), first_line, second_line), ("a", 2, 4)),
            other => panic!("{other:?}"),
        }
        let error = strict(text).unwrap_err().to_string();
        assert!(error.contains("lines 2 and 4"), "{error}");
        let allocation = lenient(text);
        assert_eq!(
            allocation.pools,
            vec![
                pool("a", Fifo, 0, 1),
                pool("b", Fifo, 0, 1),
                pool("a", Fifo, 0, 2)
            ]
        );
        assert_eq!(allocation.warnings.len(), 1);
        assert!(allocation.warnings[0].contains("\"a\" is defined twice"));
    }

    #[test]
    fn malformed_xml_reports_line_and_column() {
        let text = "<allocations>\n  <pool name=\"a\">\n    <weight>1</wieght>\n</allocations>";
        match strict(text).unwrap_err() {
            AllocationError::Xml { line, message, .. } => {
                assert_eq!(line, 3, "{message}")
            }
            other => panic!("{other:?}"),
        }
        // Truncated: the error is at the end, not at 1:1.
        match lenient_error("<allocations>\n<pool name=\"a\">\n") {
            AllocationError::Xml { line, column, .. } => assert_eq!((line, column), (3, 1)),
            other => panic!("{other:?}"),
        }
        let message = lenient_error("<a>\n<b></a>").to_string();
        assert!(
            message.starts_with("allocation file test.xml is not well-formed XML (line 2"),
            "{message}"
        );
    }

    fn lenient_error(text: &str) -> AllocationError {
        parse_allocation_str(text, "test.xml", false).unwrap_err()
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let path = std::env::temp_dir().join("fairway-no-such-dir/fairscheduler.xml");
        let error = parse_allocation_file(&path, false).unwrap_err();
        assert!(matches!(error, AllocationError::Io { .. }), "{error:?}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn reads_a_file_with_a_bom_and_a_doctype() {
        let dir = std::env::temp_dir().join(format!("fairway-allocation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fairscheduler.xml");
        let text = "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE allocations [<!ENTITY w \"3\">]>\n\
                    <allocations><pool name=\"p\"><weight>&w;</weight></pool></allocations>";
        std::fs::write(&path, text).unwrap();
        let allocation = parse_allocation_file(&path, true);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(allocation.unwrap().pools, vec![pool("p", Fifo, 0, 3)]);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use std::time::Duration;

    fn pool(children: &str, strict: bool) -> Result<Allocation, AllocationError> {
        let text = format!("<allocations><pool name=\"p\">{children}</pool></allocations>");
        parse_allocation_str(&text, "f.xml", strict)
    }

    #[test]
    fn fairway_limits_parse_trimmed() {
        let allocation = pool(
            "<maxShare> 4 </maxShare><maxRunningJobs>2</maxRunningJobs>\
             <maxQueuedJobs>0</maxQueuedJobs><memory>512 MiB</memory><timeout>1.5m</timeout>",
            true,
        )
        .unwrap();
        let p = &allocation.pools[0];
        assert_eq!(
            (
                p.max_share,
                p.max_running_jobs,
                p.max_queued_jobs,
                p.memory,
                p.timeout
            ),
            (
                Some(4),
                Some(2),
                Some(0),
                Some(512 << 20),
                Some(Duration::from_secs(90))
            )
        );
        assert!(allocation.warnings.is_empty());
    }

    #[test]
    fn bad_limits_fail_strict_and_are_ignored_lenient() {
        for (children, element, reason) in [
            ("<maxShare>0</maxShare>", "maxShare", "at least 1"),
            (
                "<maxRunningJobs>-1</maxRunningJobs>",
                "maxRunningJobs",
                "at least 1",
            ),
            (
                "<maxQueuedJobs>x</maxQueuedJobs>",
                "maxQueuedJobs",
                "not a decimal",
            ),
            ("<memory>lots</memory>", "memory", "expected a size"),
            ("<memory>0</memory>", "memory", "more than 0"),
            ("<timeout>soon</timeout>", "timeout", "expected a duration"),
            ("<timeout>0s</timeout>", "timeout", "more than 0"),
        ] {
            let error = pool(children, true).unwrap_err().to_string();
            assert!(
                error.contains(&format!("<{element}>")) && error.contains(reason),
                "{children}: {error}"
            );
            let lenient = pool(children, false).unwrap();
            assert_eq!(lenient.pools[0], PoolConfig::new("p"), "{children}");
            assert!(
                lenient.warnings[0].contains("ignored"),
                "{:?}",
                lenient.warnings
            );
        }
    }
}
