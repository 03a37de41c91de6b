//! Tab completion in the shell: meta commands after `\`, settings after
//! `SET`, file paths inside quotes, and otherwise SQL keywords, table names
//! and the columns of the tables the statement names.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

/// The SQL keywords offered, the common ones only (sqlparser knows 700).
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "AND",
    "ANTI",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "COPY",
    "COUNT",
    "CREATE",
    "CROSS",
    "CUBE",
    "DATE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DISTINCT",
    "DROP",
    "ELSE",
    "END",
    "EXCEPT",
    "EXISTS",
    "EXPLAIN",
    "EXTERNAL",
    "FALSE",
    "FILTER",
    "FIRST",
    "FROM",
    "FULL",
    "GROUP",
    "GROUPING",
    "HAVING",
    "IN",
    "INNER",
    "INSERT",
    "INTERSECT",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOCATION",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "RIGHT",
    "ROLLUP",
    "ROWS",
    "SELECT",
    "SEMI",
    "SET",
    "SHOW",
    "STORED",
    "TABLE",
    "TABLES",
    "THEN",
    "TO",
    "TRUE",
    "UNION",
    "USING",
    "VALUES",
    "VIEW",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// The meta commands, for completion after `\`.
pub const META: &[&str] = &[
    "\\?",
    "\\q",
    "\\d",
    "\\dp",
    "\\timing",
    "\\format",
    "\\maxrows",
    "\\x",
    "\\i",
];

/// What completion knows about the session, refreshed by the shell after
/// every statement.
#[derive(Default)]
pub struct Catalog {
    /// Tables and views with their columns.
    pub tables: Vec<(String, Vec<String>)>,
    /// `fairway.*` and `datafusion.*` setting names.
    pub settings: Vec<String>,
    /// The lines of the statement typed so far (before the current line).
    pub pending: String,
}

pub struct ShellHelper {
    pub catalog: Arc<Mutex<Catalog>>,
}

impl Helper for ShellHelper {}
impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let catalog = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
        Ok(complete(&catalog, line, pos))
    }
}

fn pairs(words: impl IntoIterator<Item = String>) -> Vec<Pair> {
    let mut words: Vec<String> = words.into_iter().collect();
    words.sort();
    words.dedup();
    words
        .into_iter()
        .map(|w| Pair {
            display: w.clone(),
            replacement: w,
        })
        .collect()
}

/// Where the completed word starts and the candidates for it.
pub fn complete(catalog: &Catalog, line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let before = &line[..pos];
    // Meta commands at the start of a statement.
    if catalog.pending.trim().is_empty() && before.trim_start().starts_with('\\') {
        let start = before.len() - before.trim_start().len();
        if !before[start..].contains(' ') {
            let typed = &before[start..];
            return (
                start,
                pairs(
                    META.iter()
                        .filter(|m| m.starts_with(typed))
                        .map(|m| m.to_string()),
                ),
            );
        }
    }
    // Inside a string: a file path.
    let context = format!("{}{}", catalog.pending, before);
    if context.matches('\'').count() % 2 == 1 {
        let start = before.rfind('\'').map_or(0, |i| i + 1);
        return (start, paths(&before[start..]));
    }
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
    let typed = &before[start..];
    let lower = typed.to_lowercase();
    let words: Vec<String> = context[..context.len() - typed.len()]
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    // After SET (or SHOW): the settings.
    if matches!(words.last().map(String::as_str), Some("set" | "show")) {
        return (
            start,
            pairs(
                catalog
                    .settings
                    .iter()
                    .filter(|s| s.starts_with(&lower))
                    .cloned(),
            ),
        );
    }
    // Tables the statement names, also after the cursor.
    let rest: Vec<String> = line[pos..]
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map(str::to_lowercase)
        .collect();
    let named = |table: &str| {
        let table = table.to_lowercase();
        words.iter().chain(&rest).any(|w| *w == table)
    };
    let mut found = Vec::new();
    if let Some((qualifier, column)) = typed.rsplit_once('.') {
        // t.col: the columns of table t, or of every named table when t
        // is an alias.
        let of_table: Vec<&(String, Vec<String>)> = catalog
            .tables
            .iter()
            .filter(|(t, _)| t.eq_ignore_ascii_case(qualifier))
            .collect();
        let tables: Vec<&(String, Vec<String>)> = if of_table.is_empty() {
            catalog.tables.iter().filter(|(t, _)| named(t)).collect()
        } else {
            of_table
        };
        for (_, columns) in tables {
            for c in columns {
                if c.to_lowercase().starts_with(&column.to_lowercase()) {
                    found.push(format!("{qualifier}.{c}"));
                }
            }
        }
        return (start, pairs(found));
    }
    if typed.is_empty() {
        return (start, Vec::new());
    }
    let upper = typed.chars().all(|c| !c.is_lowercase());
    for k in KEYWORDS {
        if k.to_lowercase().starts_with(&lower) {
            found.push(if upper {
                k.to_string()
            } else {
                k.to_lowercase()
            });
        }
    }
    for (table, columns) in &catalog.tables {
        if table.to_lowercase().starts_with(&lower) {
            found.push(table.clone());
        }
        if named(table) {
            for c in columns {
                if c.to_lowercase().starts_with(&lower) {
                    found.push(c.clone());
                }
            }
        }
    }
    (start, pairs(found))
}

/// Files and folders whose path starts with `typed`; folders end in `/`.
fn paths(typed: &str) -> Vec<Pair> {
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let expanded = match dir.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(rest))
            .unwrap_or_else(|| Path::new(dir).to_path_buf()),
        None => Path::new(if dir.is_empty() { "." } else { dir }).to_path_buf(),
    };
    let Ok(entries) = std::fs::read_dir(&expanded) else {
        return Vec::new();
    };
    pairs(entries.flatten().filter_map(|entry| {
        let name = entry.file_name().into_string().ok()?;
        if !name.starts_with(prefix) || (prefix.is_empty() && name.starts_with('.')) {
            return None;
        }
        let folder = entry.file_type().is_ok_and(|t| t.is_dir());
        Some(format!("{dir}{name}{}", if folder { "/" } else { "" }))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            tables: vec![
                (
                    "orders".into(),
                    vec!["o_orderkey".into(), "o_custkey".into()],
                ),
                ("customer".into(), vec!["c_custkey".into(), "c_name".into()]),
            ],
            settings: vec![
                "datafusion.execution.batch_size".into(),
                "fairway.scheduler.pool".into(),
            ],
            pending: String::new(),
        }
    }

    fn words(line: &str) -> Vec<String> {
        let (_, found) = complete(&catalog(), line, line.len());
        found.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn keywords_follow_the_case_typed_and_tables_are_offered() {
        assert_eq!(words("SEL"), vec!["SELECT"]);
        assert_eq!(words("sel"), vec!["select"]);
        assert_eq!(words("SELECT * FROM cus"), vec!["customer"]);
    }

    #[test]
    fn columns_of_the_named_tables_only() {
        let (start, found) = complete(&catalog(), "SELECT o_ FROM orders", 9);
        assert_eq!(start, 7);
        let found: Vec<String> = found.into_iter().map(|p| p.replacement).collect();
        assert_eq!(found, vec!["o_custkey", "o_orderkey"]);
        assert_eq!(words("SELECT c_n"), Vec::<String>::new());
        assert_eq!(words("SELECT orders.o_c"), vec!["orders.o_custkey"]);
    }

    #[test]
    fn settings_after_set_and_meta_commands_after_a_backslash() {
        assert_eq!(words("SET fairway.sch"), vec!["fairway.scheduler.pool"]);
        assert_eq!(words("\\d"), vec!["\\d", "\\dp"]);
    }

    #[test]
    fn file_paths_inside_quotes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders.parquet"), b"").unwrap();
        std::fs::create_dir(dir.path().join("lineitem")).unwrap();
        let base = dir.path().display().to_string();
        assert_eq!(
            words(&format!("SELECT * FROM '{base}/or")),
            vec![format!("{base}/orders.parquet")]
        );
        assert_eq!(
            words(&format!(
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{base}/l"
            )),
            vec![format!("{base}/lineitem/")]
        );
    }
}
