//! The process around the HTTP API: binding, signals (SIGTERM/Ctrl-C stop, SIGHUP
//! reloads the model and the brand registry) and graceful shutdown with a deadline.

use super::config::ServerConfig;
use super::router::router;
use super::state::{AppState, StartError};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

/// Runs the server until SIGTERM or Ctrl-C, then stops accepting, lets in-flight requests
/// finish for at most `config.shutdown_timeout`, and returns. SIGHUP reloads the model.
pub async fn run(config: ServerConfig) -> Result<(), StartError> {
    tracing::info!(config = ?config, "starting knockoff-serve");
    // Install handlers before anything can be signalled: a SIGTERM or SIGHUP that arrived
    // before them would otherwise kill the process with the default action.
    let mut signals = Signals::install().map_err(StartError::Serve)?;
    let load_config = config.clone();
    let state = tokio::task::spawn_blocking(move || AppState::load(load_config))
        .await
        .map_err(|e| StartError::Serve(std::io::Error::other(e)))??;
    let model = state.model_info();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartError::Serve)?;
    tracing::info!(%addr, model = %model.name, version = %model.version, "listening");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_state = state.clone();
    tokio::spawn(async move {
        loop {
            match signals.next().await {
                SignalKind::Reload => {
                    tracing::info!("SIGHUP: reloading the model and the brand registry");
                    // Failures are logged by reload itself; the old model keeps serving.
                    let _ = signal_state.core().reload(None).await;
                    reload_registry(&signal_state).await;
                }
                SignalKind::Stop(name) => {
                    tracing::info!(
                        signal = name,
                        "shutting down: no new connections, finishing in-flight requests"
                    );
                    let _ = stop_tx.send(());
                    return;
                }
            }
        }
    });
    let shutdown = async move {
        let _ = stop_rx.await;
    };
    let recorder_state = state.clone();
    match serve(listener, state, shutdown, config.shutdown_timeout).await {
        Ok(Drained::Completely) => {}
        Ok(Drained::TimedOut) => tracing::warn!(
            timeout_secs = config.shutdown_timeout.as_secs(),
            "shutdown timeout reached; abandoning requests still in flight"
        ),
        Err(e) => return Err(StartError::Serve(e)),
    }
    // Listings decided review in the last moments reach the queue before the process ends.
    recorder_state.review_recorder().flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// Rereads the registry from the store (changed by `knockoff-brands import`, say) for scoring.
async fn reload_registry(state: &AppState) {
    match state
        .store()
        .blocking(|store| store.republish_brands())
        .await
    {
        Ok(brands) => tracing::info!(brands, "brand registry reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "cannot reread the brand registry; scoring keeps the previous one")
        }
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request was answered.
    Completely,
    /// The timeout struck first; requests still in flight were abandoned.
    TimedOut,
}

/// Serves `state` on `listener` until `shutdown` completes; then readiness turns false,
/// no new connections are accepted, and in-flight requests get at most `timeout` to
/// finish. Separate from [`run`] so tests can drive a shutdown without process signals.
///
/// Each connection is served by hyper's HTTP/1 with its read buffer capped at
/// `connection_buffer_bytes` (axum's `serve` leaves it at hyper's 400 KB, which under a
/// few hundred connections of large bodies was most of the server's memory).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: F,
    timeout: std::time::Duration,
) -> std::io::Result<Drained>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let draining = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining.begin_shutdown();
        let _ = stop_tx.send(true);
    });
    let buffer = state.config().connection_buffer_bytes;
    let service = TowerToHyperService::new(router(state).into_service());
    let graceful = GracefulShutdown::new();
    let mut accept_rx = stop_rx;
    let stopped = async move {
        // An error means the sender is gone, which only happens after it sent.
        let _ = accept_rx.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    wait_after_accept_error(e).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        // Answers are written whole: Nagle's delay only slows the small ones.
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .max_buf_size(buffer)
            .serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(Drained::Completely),
        () = tokio::time::sleep(timeout) => Ok(Drained::TimedOut),
    }
}

/// After a failed `accept`: a client that gave up is nothing; running out of file
/// descriptors (or any other error) is logged, and accepting pauses a moment so
/// connections can close instead of the loop spinning.
async fn wait_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; pausing 100 ms");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

enum SignalKind {
    Reload,
    Stop(&'static str),
}

/// The process signals the server reacts to.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind as Kind};
        Ok(Signals {
            terminate: signal(Kind::terminate())?,
            interrupt: signal(Kind::interrupt())?,
            hangup: signal(Kind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> SignalKind {
        tokio::select! {
            _ = self.terminate.recv() => SignalKind::Stop("SIGTERM"),
            _ = self.interrupt.recv() => SignalKind::Stop("SIGINT"),
            _ = self.hangup.recv() => SignalKind::Reload,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> SignalKind {
        let _ = tokio::signal::ctrl_c().await;
        SignalKind::Stop("Ctrl-C")
    }
}
