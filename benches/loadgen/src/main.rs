//! flashgate's load generator: drives a server over WebSocket, raw TCP, SockJS or the Flash
//! policy protocol and prints one JSON line of results. It runs on one core (current-thread
//! tokio), builds every frame once, and parses replies in place, so the server is what is
//! measured; `serve tcp-echo` shows its ceiling. `benches/run` drives it against flashgate
//! and peers.

mod broadcast;
mod connect;
mod echo;
mod fanout;
mod http;
mod idle;
mod policy;
mod serve;
mod sockjs;
mod stats;
mod wire;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Messages per second and round-trip latency with K messages in flight per connection.
    Echo(echo::Args),
    /// Connections per second (WebSocket: with the upgrade and the close handshake).
    Connect(connect::Args),
    /// Resident memory per idle connection of a server.
    Idle(idle::Args),
    /// Delivery latency and fan-out rate of a broadcast room.
    Broadcast(broadcast::Args),
    /// Flash socket policy replies per second.
    Policy(policy::Args),
    /// SockJS echo on one transport (xhr-streaming, xhr-polling, websocket): messages per
    /// second and round-trip latency; or memory per idle streaming session (--idle).
    Sockjs(sockjs::Args),
    /// Run a reference server (tcp-echo, tcp-reply, tcp-relay, ws-fanout, ws-echo,
    /// xmlsocket-echo, tungstenite-echo, tungstenite-echo-naive).
    Serve(serve::Args),
}

/// Warm-up and measured time, shared by the timed modes.
#[derive(clap::Args, Debug)]
pub struct Timing {
    /// Measured seconds.
    #[arg(short = 'd', long, default_value = "5", value_parser = seconds)]
    pub duration: Duration,
    /// Seconds of load before measuring.
    #[arg(long, default_value = "1", value_parser = seconds)]
    pub warmup: Duration,
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .map(Duration::from_secs_f64)
        .map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let result = match cli.mode {
            Mode::Echo(args) => echo::run(args).await?,
            Mode::Connect(args) => connect::run(args).await?,
            Mode::Idle(args) => idle::run(args).await?,
            Mode::Broadcast(args) => broadcast::run(args).await?,
            Mode::Policy(args) => policy::run(args).await?,
            Mode::Sockjs(args) => sockjs::run(args).await?,
            Mode::Serve(args) => return serve::run(args).await,
        };
        println!("{result}");
        Ok(())
    })
}
