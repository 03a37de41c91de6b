//! `fairway tpch gen`: write the 8 TPC-H tables as parquet.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use fairway_tpch::generate_parquet;

use crate::args::TpchCommand;

pub fn run(command: TpchCommand) -> Result<()> {
    match command {
        TpchCommand::Gen { sf, out } => generate(sf, &out),
    }
}

fn generate(sf: f64, out: &Path) -> Result<()> {
    let start = Instant::now();
    let summary = generate_parquet(sf, out)?;
    for (table, rows) in &summary.tables {
        eprintln!("{table}: {rows} rows");
    }
    eprintln!(
        "TPC-H SF {sf} {} in {} ({:.1} s)",
        if summary.reused {
            "already present"
        } else {
            "written"
        },
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
