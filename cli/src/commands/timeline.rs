//! `fairway timeline`: draw an event log as one self-contained HTML page.

use anyhow::Result;
use fairway_observe::timeline::write_page;

use crate::args::TimelineArgs;

pub fn run(args: TimelineArgs) -> Result<()> {
    let TimelineArgs {
        events,
        output,
        title,
    } = args;
    let title = title.unwrap_or_else(|| format!("fairway timeline: {}", events.display()));
    let totals = write_page(&events, &output, &title)?;
    eprintln!("wrote {}: {totals}", output.display());
    Ok(())
}
