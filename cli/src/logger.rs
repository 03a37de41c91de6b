//! Log lines on stderr, one per record: `warning: ...`, `info: ...`.
//! Warnings are on by default (a pool created on first use, an allocation
//! file's value replaced by its default); `fairway connect` also logs one
//! line per request at info level. `RUST_LOG` and then `FAIRWAY_LOG` change
//! the levels, with env_logger's syntax (`debug`, `fairway_engine=debug`,
//! `off`).

use std::io::Write;

use log::{Level, LevelFilter};

/// Installs the logger: warnings for every command, and fairway's own info
/// lines for a server.
pub fn init(server: bool) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(LevelFilter::Warn);
    if server {
        // Prefix match: every fairway_* crate.
        builder.filter_module("fairway", LevelFilter::Info);
    }
    for variable in ["RUST_LOG", "FAIRWAY_LOG"] {
        if let Ok(filters) = std::env::var(variable) {
            builder.parse_filters(&filters);
        }
    }
    builder
        .target(env_logger::Target::Stderr)
        .format(|out, record| {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            let target = record.target();
            if target.starts_with("fairway") {
                writeln!(out, "{level}: {}", record.args())
            } else {
                // A library's line says whose it is.
                let name = target.split("::").next().unwrap_or(target);
                writeln!(out, "{level}: [{name}] {}", record.args())
            }
        });
    let _ = builder.try_init();
}
