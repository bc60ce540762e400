//! Every request's body is bounded in size and in time before any handler sees it: larger than
//! `server.max_body_bytes` gets `413` (at once when `Content-Length` says so, otherwise as soon
//! as the limit is passed), and a body slower than `server.body_read_timeout_secs` gets `408`.
//! Memory per request is bounded by the limit, whatever a client sends.

use std::{sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, error::ReadBodyError, http::header};

use tokio::sync::Semaphore;

use crate::{
    error::AppError,
    http::{error::app_error_json, pages},
};

pub struct BodyLimit {
    pub max_bytes: usize,
    pub read_timeout: Duration,
    /// Paths whose bodies may be larger (a raw email), and how large. At most
    /// `LARGE_BODIES_AT_ONCE` such bodies are read at once, so they bound memory too.
    pub larger: &'static [(&'static str, usize)],
}

/// Large bodies read at once, over all `larger` paths; more get 503 and retry (a mail
/// provider does).
const LARGE_BODIES_AT_ONCE: usize = 4;

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint {
            ep,
            max_bytes: self.max_bytes,
            read_timeout: self.read_timeout,
            larger: self.larger,
            large_slots: Arc::new(Semaphore::new(LARGE_BODIES_AT_ONCE)),
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    ep: E,
    max_bytes: usize,
    read_timeout: Duration,
    larger: &'static [(&'static str, usize)],
    large_slots: Arc<Semaphore>,
}

/// Refusals answer in the shape the client asked for: JSON under /api, a page elsewhere.
fn refuse(req: &Request, err: &AppError) -> Response {
    let mut response = if req.uri().path().starts_with("/api") {
        app_error_json(err)
    } else {
        pages::error_page(err)
    };
    // The rest of the body is not read: the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, poem::http::HeaderValue::from_static("close"));
    response
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let larger = self.larger.iter().find(|(path, _)| *path == req.uri().path());
        let max_bytes = larger.map_or(self.max_bytes, |(_, max)| *max);
        // Held until the body is read and handled.
        let _large_slot = match larger {
            None => None,
            Some(_) => match self.large_slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    let busy = anyhow::anyhow!("{LARGE_BODIES_AT_ONCE} large bodies are being read already");
                    return Ok(refuse(&req, &AppError::Unavailable(busy)));
                }
            },
        };
        let too_large = AppError::PayloadTooLarge { limit: max_bytes };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Ok(refuse(&req, &too_large));
        }
        let body = req.take_body();
        match tokio::time::timeout(self.read_timeout, body.into_bytes_limit(max_bytes)).await {
            Err(_) => Ok(refuse(&req, &AppError::RequestTimeout)),
            Ok(Err(ReadBodyError::PayloadTooLarge)) => Ok(refuse(&req, &too_large)),
            Ok(Err(e)) => Ok(refuse(
                &req,
                &AppError::InvalidInput(format!("the request body could not be read: {e}")),
            )),
            Ok(Ok(bytes)) => {
                req.set_body(bytes);
                self.ep.call(req).await.map(IntoResponse::into_response)
            }
        }
    }
}
