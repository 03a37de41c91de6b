//! `fairway features build|explain`: a feature spec with the command line's
//! overrides, built or explained.

use std::io::IsTerminal;

use anyhow::Result;
use fairway_features::{
    BuildOptions, FeatureSpec, build_features, explain_features, explain_shared_work,
};

use crate::args::{FeaturesBuildArgs, FeaturesCommand, FeaturesSpecArgs};

pub async fn run(command: FeaturesCommand) -> Result<()> {
    match command {
        FeaturesCommand::Build(args) => build(args).await,
        FeaturesCommand::Explain(args) => {
            let (spec, options) = args.spec.load()?;
            print!("{}", explain_features(&spec, &options)?);
            print!("{}", explain_shared_work(&spec, &options).await?);
            Ok(())
        }
    }
}

/// `fairway features build`.
async fn build(args: FeaturesBuildArgs) -> Result<()> {
    let (spec, mut options) = args.spec.load()?;
    options.force = args.force;
    options.event_log = args.event_log.event_log.clone();
    options.sequential = args.sequential;
    options.progress = std::io::stderr().is_terminal();
    (options.cluster, options.cluster_slots) = args.cluster.parse()?;
    let summary = build_features(&spec, &options).await?;
    println!("{summary}");
    Ok(())
}

impl FeaturesSpecArgs {
    /// The spec with --source/--sources-dir applied, and the build options
    /// of the shared flags.
    fn load(&self) -> Result<(FeatureSpec, BuildOptions)> {
        let mut spec = FeatureSpec::load(&self.spec)?;
        if let Some(dir) = &self.sources_dir {
            spec.use_sources_dir(dir);
        }
        for (name, path) in &self.sources {
            spec.set_source(name, path)?;
        }
        let options = BuildOptions {
            out: self.out.clone(),
            cache_dir: self.cache_dir.clone(),
            slots: self.slots.slots,
            partitions: self.slots.partitions,
            scheduler_mode: self.mode.scheduler_mode.map(Into::into),
            allocation_file: self.pools.allocation_file.clone(),
            default_pool: self.pools.pool.clone(),
            conf: self.conf.pairs()?,
            share_subplans: self.no_share_subplans.then_some(false),
            fuse_aggregations: self.no_fuse_aggregations.then_some(false),
            ..BuildOptions::default()
        };
        Ok((spec, options))
    }
}
