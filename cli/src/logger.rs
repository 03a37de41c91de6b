//! Log lines on stderr: `fairway connect` logs one line per request at
//! info level; other commands print their own one-line errors and log
//! nothing. `FAIRWAY_LOG` (error, warn, info, debug, trace, off) overrides
//! the level.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Only fairway's own lines; the libraries' are noise here.
        metadata.target().starts_with("fairway")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        eprintln!("{level}: {}", record.args());
    }

    fn flush(&self) {}
}

/// Installs the logger: info for a server, off otherwise.
pub fn init(server: bool) {
    let default = if server {
        LevelFilter::Info
    } else {
        LevelFilter::Off
    };
    let level = std::env::var("FAIRWAY_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}
