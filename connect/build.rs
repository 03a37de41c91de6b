//! Generates the Spark Connect protocol types and the gRPC service from the
//! vendored `.proto` files (see `proto/README.md`). `protox` parses them in
//! pure Rust, so the build needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "base",
        "commands",
        "common",
        "expressions",
        "relations",
        "types",
        "catalog",
        "ml",
        "ml_common",
        "pipelines",
    ]
    .map(|name| format!("proto/spark/connect/{name}.proto"));
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(&files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The tests drive the server with the generated client.
        .build_client(true)
        // A depth check before prost decodes (src/codec.rs).
        .codec_path("crate::codec::DepthLimitedCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
