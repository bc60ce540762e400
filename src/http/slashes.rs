//! Paths are routed with trailing slashes trimmed and repeated slashes merged (`/api/v1/me/`
//! and `/api//v1/me` are `/api/v1/me`), as poem's `NormalizePath(TrailingSlash::Trim)` does.
//! Unlike it, a path that needs neither (nearly every request) passes through untouched:
//! poem's ran a regex over every path and allocated it anew, on the profile of bench (m).

use poem::{
    Endpoint, Middleware, Request,
    http::{Uri, uri::PathAndQuery},
};

pub struct NormalizeSlashes;

impl<E: Endpoint> Middleware<E> for NormalizeSlashes {
    type Output = NormalizeSlashesEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        NormalizeSlashesEndpoint(ep)
    }
}

pub struct NormalizeSlashesEndpoint<E>(E);

impl<E: Endpoint> Endpoint for NormalizeSlashesEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        if let Some(path) = normalized(req.uri().path())
            && let Some(uri) = with_path(req.uri(), &path)
        {
            *req.uri_mut() = uri;
        }
        self.0.call(req).await
    }
}

/// The normal form of `path`, or `None` when it is normal already.
fn normalized(path: &str) -> Option<String> {
    let trailing = path.len() > 1 && path.ends_with('/');
    if !trailing && !path.contains("//") {
        return None;
    }
    let mut normal = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        normal.push('/');
        normal.push_str(segment);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    Some(normal)
}

/// `uri` with its path replaced, its query kept.
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_pass_untouched() {
        for path in ["/", "/api/v1/me", "/deletions/abc", "/a/b.css"] {
            assert_eq!(normalized(path), None, "{path}");
        }
    }

    #[test]
    fn trailing_and_repeated_slashes_go() {
        for (path, normal) in [
            ("/api/v1/me/", "/api/v1/me"),
            ("/api//v1///me", "/api/v1/me"),
            ("//", "/"),
            ("///a//", "/a"),
            ("/account/profile//", "/account/profile"),
        ] {
            assert_eq!(normalized(path).as_deref(), Some(normal), "{path}");
        }
    }

    #[test]
    fn the_query_is_kept() {
        let uri: Uri = "/api/v1/ledger/?q=a%2Fb&page=2".parse().unwrap();
        let rewritten = with_path(&uri, "/api/v1/ledger").unwrap();
        assert_eq!(rewritten.to_string(), "/api/v1/ledger?q=a%2Fb&page=2");
    }
}
