//! The HTTP server: poem's router behind our own accept loop, because poem's `Server` cannot
//! bound what slow or idle clients hold. Here:
//! - at most `server.max_connections` connections are served at once; more wait in the
//!   listen backlog;
//! - a request's headers must arrive within `server.header_read_timeout_secs` (hyper's
//!   header-read timer), or the connection is closed: a half-open or trickling client cannot
//!   hold a connection for long;
//! - on shutdown, connections finish their requests within the grace period, then close.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use poem::{
    Addr, Endpoint, EndpointExt, IntoResponse,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish for `grace`.
pub async fn serve<E>(
    listener: TcpListener,
    app: E,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()>
where
    E: Endpoint + 'static,
{
    let app = Arc::new(app.map_to_response());
    let local = listener.local_addr()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100);
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot?,
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let app = app.clone();
            async move {
                let req: poem::Request = (req, local_addr(local), remote_addr(peer), Scheme::HTTP).into();
                let response = app.get_response(req).await.into_response();
                Ok::<hyper::Response<Body>, Infallible>(response.into())
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("connections still open after the grace period; closing them"),
    }
    Ok(())
}

fn local_addr(addr: SocketAddr) -> LocalAddr {
    LocalAddr(Addr::SocketAddr(addr))
}

fn remote_addr(addr: SocketAddr) -> RemoteAddr {
    RemoteAddr(Addr::SocketAddr(addr))
}
