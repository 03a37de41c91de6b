//! Builds the bundled customer feature table from Rust, twice: the second
//! build reuses every method's materialised result.
//!
//! ```sh
//! cargo run --example features
//! ```

use std::path::PathBuf;

use fairway_features::{BuildOptions, FeatureSpec, build_features, explain_features};

#[tokio::main]
async fn main() -> Result<(), fairway_features::FeatureError> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = FeatureSpec::load(root.join("testdata/features/customer.toml"))?;
    let options = BuildOptions {
        out: Some(root.join("target/features/example/customer.parquet")),
        slots: Some(2),
        ..BuildOptions::default()
    };
    println!("{}", explain_features(&spec, &options)?);
    let first = build_features(&spec, &options).await?;
    println!("{first}\n");
    let second = build_features(&spec, &options).await?;
    println!("{second}");
    assert_eq!(second.reused().len(), spec.methods.len());
    Ok(())
}
