//! One log line per request: method, path, status, duration. Unlike poem's `Tracing`, it
//! never logs a query string (reset links carry tokens there) and replaces token-shaped path
//! segments (deletion receipts) with `:token`.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response};

use crate::state::AppState;

pub struct RequestLog;

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestLogEndpoint(ep)
    }
}

pub struct RequestLogEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let method = req.method().clone();
        let path = redacted_path(req.uri().path());
        let state = req.data::<AppState>().cloned();
        let started = Instant::now();
        let response = match self.0.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        if let Some(state) = state {
            // The route pattern, never the path: paths carry tokens, and one series per path
            // would grow without bound.
            let route = response.data::<PathPattern>().map_or("unmatched", |p| &p.0);
            state
                .metrics
                .request(method.as_str(), route, response.status().as_u16());
        }
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        Ok(response)
    }
}

/// Our tokens are 43 URL-safe base64 characters; anything that long and plain is treated as
/// one.
pub fn redacted_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let token_like = segment.len() >= 20
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if token_like { ":token" } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn tokens_in_paths_are_replaced() {
        assert_eq!(
            redacted_path("/api/v1/deletions/kIoI4UnAQw1s8FgoPHisNbFskcsGNB2OkUbkja6mOdo"),
            "/api/v1/deletions/:token"
        );
        assert_eq!(redacted_path("/account/profile"), "/account/profile");
    }
}
