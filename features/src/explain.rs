//! `fairway features explain`: what a build would do, without reading data.

use std::fmt::Write;

use super::build::{
    BuildOptions, Reads, automatic_settings, check, check_reads, discover_automatic, engine_config,
    shared_views,
};
use super::cache::{lineage, sql_file};
use super::spec::{Body, FeatureSpec};
use crate::error::Result;

/// The balanced FULL OUTER merge of `names` as a bracket, paired the way
/// [`fairway_engine::merge_frames`] pairs its inputs: neighbours level by level, an
/// odd last one moving up alone; e.g. `((a ⟗ b) ⟗ (c ⟗ d)) ⟗ e`.
pub fn merge_tree(names: &[String]) -> String {
    let mut level: Vec<(String, bool)> = names.iter().map(|n| (n.clone(), false)).collect();
    if level.is_empty() {
        return String::new();
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut items = level.into_iter();
        while let Some(a) = items.next() {
            next.push(match items.next() {
                Some(b) => (format!("{} ⟗ {}", wrap(a), wrap(b)), true),
                None => a,
            });
        }
        level = next;
    }
    level.pop().expect("one left").0
}

fn wrap((text, joined): (String, bool)) -> String {
    if joined { format!("({text})") } else { text }
}

/// The left-deep chain the sequential baseline merges: `((a ⟗ b) ⟗ c) ⟗ d`.
pub fn left_deep_tree(names: &[String]) -> String {
    let mut names = names.iter();
    let Some(first) = names.next() else {
        return String::new();
    };
    let mut acc = (first.clone(), false);
    for name in names {
        acc = (format!("{} ⟗ {name}", wrap(acc)), true);
    }
    acc.0
}

/// A text report of a spec: sources, views (which are shared, by which
/// methods), methods with their pools and inputs, and the merge tree.
/// Checks table names and SQL syntax but reads no data.
pub fn explain_features(spec: &FeatureSpec, options: &BuildOptions) -> Result<String> {
    let Reads {
        views: view_reads,
        methods: method_reads,
    } = check_reads(spec)?;
    let config = engine_config(spec, options)?;
    let lineages: Vec<_> = method_reads
        .iter()
        .map(|r| lineage(r, &view_reads))
        .collect();
    let all: Vec<usize> = (0..spec.methods.len()).collect();
    let shared = shared_views(spec, &lineages, &all);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "feature table {}", spec.file.display());
    let casts: Vec<String> = spec
        .build
        .key_cast
        .iter()
        .map(|(k, t)| format!("{k} as {t}"))
        .collect();
    let _ = writeln!(
        w,
        "key: {}{}",
        spec.key.join(", "),
        if casts.is_empty() {
            String::new()
        } else {
            format!(" (cast in every method: {})", casts.join(", "))
        }
    );
    let output = options.out.clone().or_else(|| spec.output.path.clone());
    let _ = writeln!(
        w,
        "output: {} (parquet, {:?}{})",
        output.map_or_else(
            || "(none: give --out)".to_string(),
            |p| p.display().to_string()
        ),
        spec.output.compression,
        spec.output
            .row_group_size
            .map(|n| format!(", row groups of {n} rows"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        w,
        "scheduler: {} mode, {} slots, {} partitions, default pool '{}'{}",
        config.scheduler_mode,
        config.slots,
        config.partitions,
        config.default_pool,
        config
            .allocation_file
            .as_ref()
            .map(|f| format!(", allocation file {}", f.display()))
            .unwrap_or_default()
    );
    for line in pool_lines(spec, &config) {
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(w, "\nsources:");
    let width = spec.sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for source in &spec.sources {
        let _ = writeln!(w, "  {:<width$}  {}", source.name, source.path);
    }
    if !spec.views.is_empty() {
        let _ = writeln!(w, "\nviews:");
        for view in &spec.views {
            let name = view.name.to_ascii_lowercase();
            let reads = view_reads.get(&name).cloned().unwrap_or_default();
            let readers: Vec<&str> = spec
                .methods
                .iter()
                .zip(&lineages)
                .filter(|(_, l)| l.views.contains(&name))
                .map(|(m, _)| m.name.as_str())
                .collect();
            let how = if shared.iter().any(|(v, _)| *v == name) {
                format!(
                    "SHARED by {} methods: {} (computed once per build, kept for the build)",
                    readers.len(),
                    readers.join(", ")
                )
            } else if readers.is_empty() {
                "read by no method".to_string()
            } else {
                format!("read by {} only (inlined into it)", readers.join(", "))
            };
            let _ = writeln!(
                w,
                "  {}  [{}]  reads {}; {how}",
                view.name,
                kind(&view.body),
                reads.join(", ")
            );
        }
    }
    let _ = writeln!(
        w,
        "\nmethods (output columns in this order, after the key):"
    );
    let width = spec.methods.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for ((method, reads), lineage) in spec.methods.iter().zip(&method_reads).zip(&lineages) {
        let sources: Vec<&str> = lineage.sources.iter().map(String::as_str).collect();
        let _ = writeln!(
            w,
            "  {:<width$}  pool {}  [{}]  reads {} (sources: {}){}",
            method.name,
            method.pool_or(&config.default_pool),
            kind(&method.body),
            reads.join(", "),
            sources.join(", "),
            match (method.allow_duplicate_keys, method.allow_null_keys) {
                (true, true) => "  duplicate and NULL keys allowed",
                (true, false) => "  duplicate keys allowed",
                (false, true) => "  NULL keys allowed",
                (false, false) => "",
            }
        );
    }
    let names: Vec<String> = spec.methods.iter().map(|m| m.name.clone()).collect();
    let _ = writeln!(
        w,
        "\nmerge tree (FULL OUTER on {}, balanced; depth {}):\n  {}",
        spec.key.join(", "),
        depth(names.len()),
        merge_tree(&names)
    );
    Ok(out)
}

/// What a build of every method of `spec` would compute once (see
/// [`crate`], step 4): the fused aggregate passes with their members, then
/// the shared joins with their readers and the columns each keeps, and why
/// other methods and joins are not fused or shared. Unlike
/// [`explain_features`] this plans every view and method in a session, so
/// it reads each source's metadata (parquet footers, CSV headers), though
/// no rows.
pub async fn explain_shared_work(spec: &FeatureSpec, options: &BuildOptions) -> Result<String> {
    let mut out = String::new();
    let w = &mut out;
    let (share_on, fuse_on) = automatic_settings(spec, options);
    let checked = check(spec, options, None).await?;
    let all: Vec<usize> = (0..spec.methods.len()).collect();
    let automatic = discover_automatic(spec, options, &checked, &all)?;
    let (fusion, sharing) = (&automatic.fusion, &automatic.sharing);
    if fuse_on {
        let _ = writeln!(
            w,
            "\nfused aggregations (methods that aggregate the same input by the same keys, run \
             as one aggregate pass with FILTER (WHERE ...) per method, once per build in pool \
             '{}'; [build] fuse_aggregations = false turns this off):",
            checked.default_pool
        );
        if fusion.groups.is_empty() {
            let _ = writeln!(w, "  none");
        }
        for g in &fusion.groups {
            let members: Vec<&str> = g
                .members
                .iter()
                .map(|&i| spec.methods[i].name.as_str())
                .collect();
            let _ = writeln!(
                w,
                "  {}: {}\n    one pass for {} methods: {}",
                g.name,
                g.description,
                members.len(),
                members.join(", ")
            );
        }
        if !fusion.not_fused.is_empty() {
            let _ = writeln!(w, "  not fused:");
            for line in &fusion.not_fused {
                let _ = writeln!(w, "    {line}");
            }
        }
    } else {
        let _ = writeln!(
            w,
            "\nfused aggregations: off ([build] fuse_aggregations = false): every method runs \
             its own aggregate"
        );
    }
    if !share_on {
        let _ = writeln!(
            w,
            "\nshared subplans: off ([build] share_subplans = false): every method computes \
             its own joins"
        );
        return Ok(out);
    }
    let _ = writeln!(
        w,
        "\nshared subplans (joins that two or more methods or fused passes compute the same \
         way, computed once per build in pool '{}' and kept like a shared view; [build] \
         share_subplans = false turns this off):",
        checked.default_pool
    );
    if sharing.shared.is_empty() {
        let _ = writeln!(w, "  none");
    }
    for s in &sharing.shared {
        let readers: Vec<&str> = s
            .readers
            .iter()
            .map(|&i| automatic.reader_name(spec, i))
            .collect();
        let _ = writeln!(
            w,
            "  {}: {}\n    read by {}: {}\n    columns kept ({}): {}",
            s.name,
            s.description,
            readers.len(),
            readers.join(", "),
            s.column_names().len(),
            s.column_names().join(", ")
        );
    }
    if !sharing.not_shared.is_empty() {
        let _ = writeln!(w, "  not shared:");
        for line in &sharing.not_shared {
            let _ = writeln!(w, "    {line}");
        }
    }
    Ok(out)
}

fn kind(body: &Body) -> String {
    match (body, sql_file(body)) {
        (Body::Sql { .. }, Some(file)) => format!(
            "sql {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        ),
        (Body::Sql { .. }, None) => "sql".to_string(),
        (Body::Steps(_), _) => "steps".to_string(),
    }
}

fn depth(n: usize) -> usize {
    let mut depth = 0;
    let mut width = n;
    while width > 1 {
        width = width.div_ceil(2);
        depth += 1;
    }
    depth
}

/// `pool NAME: MODE, weight W, minShare M (where it comes from)` for every
/// pool the build's methods and views use, as the scheduler will set it up.
fn pool_lines(spec: &FeatureSpec, config: &fairway_engine::EngineConfig) -> Vec<String> {
    use fairway_scheduler::{DEFAULT_POOL, PoolConfig, SchedulingMode};
    if config.scheduler_mode == SchedulingMode::Fifo {
        return vec!["pools: not used (FIFO mode: jobs run in submission order)".to_string()];
    }
    let mut names: Vec<String> = Vec::new();
    let used = spec
        .methods
        .iter()
        .map(|m| m.pool_or(&config.default_pool).to_string())
        .chain(
            spec.views
                .iter()
                .map(|v| v.pool_or(&config.default_pool).to_string()),
        );
    for name in used {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let file = match &config.allocation_file {
        Some(path) => {
            match fairway_scheduler::parse_allocation_file(path, config.allocation_strict) {
                Ok(allocation) => Some(allocation.pools),
                Err(e) => return vec![format!("pools: {e}")],
            }
        }
        None => None,
    };
    let describe = |p: &PoolConfig, from: &str| {
        format!(
            "pool {}: {}, weight {}, minShare {} ({from})",
            p.name, p.mode, p.weight, p.min_share
        )
    };
    names
        .iter()
        .map(|name| {
            if let Some(p) = file.iter().flatten().rev().find(|p| &p.name == name) {
                describe(p, "allocation file")
            } else if let Some(p) = config.pools.iter().find(|p| &p.name == name) {
                describe(p, "the build's default pool, shared fairly by its methods")
            } else if name == DEFAULT_POOL {
                let mode = if file.is_some() {
                    SchedulingMode::Fifo
                } else {
                    SchedulingMode::Fair
                };
                describe(
                    &PoolConfig {
                        mode,
                        ..PoolConfig::new(name)
                    },
                    "Spark's default pool",
                )
            } else {
                describe(
                    &PoolConfig::new(name),
                    "not in an allocation file: made on first use",
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn the_merge_tree_pairs_neighbours_level_by_level() {
        assert_eq!(merge_tree(&names(1)), "m1");
        assert_eq!(merge_tree(&names(2)), "m1 ⟗ m2");
        assert_eq!(merge_tree(&names(3)), "(m1 ⟗ m2) ⟗ m3");
        assert_eq!(merge_tree(&names(5)), "((m1 ⟗ m2) ⟗ (m3 ⟗ m4)) ⟗ m5");
        assert_eq!(merge_tree(&names(6)), "((m1 ⟗ m2) ⟗ (m3 ⟗ m4)) ⟗ (m5 ⟗ m6)");
        assert_eq!(left_deep_tree(&names(4)), "((m1 ⟗ m2) ⟗ m3) ⟗ m4");
        assert_eq!(depth(12), 4);
    }
}
