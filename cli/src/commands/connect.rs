//! `fairway connect`: a Spark Connect server over one fairway session.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, anyhow};
use fairway_connect::{ConnectOptions, serve};

use crate::args::ConnectArgs;

pub async fn run(args: ConnectArgs) -> Result<()> {
    let ConnectArgs {
        host,
        port,
        token,
        engine,
        cluster,
    } = args;
    let ip: IpAddr = match host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other
            .parse()
            .map_err(|_| anyhow!("option --host: '{other}' is not an IP address"))?,
    };
    if !ip.is_loopback() && token.is_none() {
        eprintln!(
            "warning: --host {ip} accepts connections from other machines without a token; \
             consider --token"
        );
    }
    let session = engine.session(Some(&cluster)).await?;
    let options = ConnectOptions { token };
    let result = serve(
        session.clone(),
        SocketAddr::new(ip, port),
        options,
        |bound| eprintln!("fairway connect: listening on sc://{bound}"),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await
    .map_err(|e| anyhow!("{e}"))
    .context("fairway connect");
    session.flush_event_log();
    result
}
