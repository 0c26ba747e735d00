//! The `flashgate` binary: parse the command line, start logging, bind, run until SIGINT or
//! SIGTERM. Everything else is in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use flashgate::args::LogFormat;
use flashgate::config::Config;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    match runtime() {
        Ok(runtime) => runtime.block_on(gateway()),
        Err(error) => {
            eprintln!("flashgate: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One worker thread per CPU this process may run on; on one CPU (a small VM, a container
/// limited to one, a process pinned to a core), the single-threaded runtime, which has no
/// work stealing, no cross-thread wake-ups and no driver lock to pay for.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = match cpus {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

async fn gateway() -> ExitCode {
    let (args, given) = flashgate::args::parse();
    // The file may set the log format: read it first, say what is wrong with it after.
    let loaded = Config::load(&args, &given);
    let format = loaded
        .as_ref()
        .map_or(args.log_format, |config| config.log_format);
    logging(format);

    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.print_ruffle_config {
        print!("{}", flashgate::ruffle_config(&config, config.listen));
        return ExitCode::SUCCESS;
    }
    if args.check {
        let (report, problems) = flashgate::check(&config);
        print!("{report}");
        for problem in &problems {
            tracing::error!("{problem}");
        }
        if !problems.is_empty() {
            return ExitCode::FAILURE;
        }
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    // Each connection is a file descriptor; the usual soft limit (1024) is far below
    // --max-connections, so raise it to the hard limit as servers commonly do.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if (limit as usize) < config.limits.max_connections + 64 => tracing::warn!(
            limit,
            "the open-file limit is below --max-connections; connections past it wait in the listen queue"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    // Handle the signals before the first `listening` line: a supervisor may stop the
    // gateway as soon as it reads it, and that must be a graceful stop, not a kill.
    let stop = stop_signal();
    let reload = reload_on_hangup();
    let listeners = match flashgate::bind(&config).await {
        Ok(listeners) => listeners,
        Err(error) => {
            tracing::error!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    // Bound: nothing left that needs root.
    match &config.user {
        Some(user) => match flashgate::privileges::drop_to(user) {
            Ok(()) => tracing::info!(user = %user.name, "running as {}", user.name),
            Err(error) => {
                tracing::error!("{error:#}");
                return ExitCode::FAILURE;
            }
        },
        None if flashgate::privileges::is_root() => tracing::warn!(
            "running as root: pass --user NAME (say, nobody) to serve without root once the ports are bound"
        ),
        None => {}
    }
    match flashgate::run_with(listeners, config, stop, reload).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines to stderr, at `RUST_LOG`'s levels (INFO without it), as text (in colour on a
/// terminal) or JSON.
fn logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// SIGHUP (a service manager's reload) reads the TLS certificate again, and never ends the
/// gateway, as it would by default.
fn reload_on_hangup() -> flashgate::Reload {
    let reload = flashgate::Reload::default();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangup) => {
                let reload = reload.clone();
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        reload.trigger();
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "cannot handle SIGHUP"),
        }
    }
    reload
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed by this call, not
/// when the future is first polled.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait(int) => {}
                _ = wait(term) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        let ctrl_c = tokio::signal::ctrl_c();
        async move {
            let _ = ctrl_c.await;
        }
    }
}
