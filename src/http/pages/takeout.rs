//! "Download my data first": the takeout page (its progress while the archive is built, the
//! download once ready), asking for an archive, and the download, for the logged-in holder only.

use poem::{
    Body, IntoResponse, Response, handler,
    http::{StatusCode, header},
    web::{CsrfToken, Data, Path},
};
use uuid::Uuid;

use super::{error_page, ok, see_other, views::TakeoutPage};
use crate::{
    http::extract::{CsrfForm, LoggedIn},
    services::takeout::{self, ExportStatus},
    state::AppState,
};

fn display_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[handler]
pub(super) async fn show(state: Data<&AppState>, LoggedIn(current): LoggedIn, token: &CsrfToken) -> Response {
    let now = state.clock.now();
    let export = match takeout::newest(&state.db, current.account.id).await {
        Ok(export) => export,
        Err(e) => return error_page(&e),
    };
    let page = match export {
        None => TakeoutPage::none(token),
        Some(export) => TakeoutPage {
            csrf_token: token.0.clone(),
            status: if export.status == ExportStatus::Ready && !export.downloadable(now) {
                "expired".to_owned()
            } else {
                export.status.as_str().to_owned()
            },
            items_done: export.items_done,
            items_total: export.items_total,
            percent: if export.items_total > 0 {
                (export.items_done.min(export.items_total) * 100) / export.items_total
            } else {
                0
            },
            download: export
                .downloadable(now)
                .then(|| format!("/account/export/{}/download", export.id)),
            megabytes: export.bytes.map(|b| format!("{:.1}", b as f64 / 1_048_576.0)),
            expires_at: export.expires_at.map(display_time),
        },
    };
    ok(&page)
}

#[handler]
pub(super) async fn start(
    state: Data<&AppState>,
    LoggedIn(current): LoggedIn,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> Response {
    match takeout::request(state.env(), current.account.id).await {
        Ok(_) => see_other("/account/export"),
        Err(e) => error_page(&e),
    }
}

#[handler]
pub(super) async fn download(
    state: Data<&AppState>,
    LoggedIn(current): LoggedIn,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(&crate::error::AppError::NotFound);
    };
    let data_dir = &state.settings.storage.data_dir;
    let archive = match takeout::open_for(state.env(), data_dir, current.account.id, id).await {
        Ok(archive) => archive,
        Err(e) => return error_page(&e),
    };
    // Opened chunk by chunk as it is sent; a chunk that does not open ends the download
    // with an error instead of sending wrong bytes.
    let chunks = futures::stream::try_unfold(archive, |mut archive| async move {
        Ok::<_, std::io::Error>(
            archive
                .next_chunk()
                .await?
                .map(|c| (bytes::Bytes::from(c), archive)),
        )
    });
    Body::from_bytes_stream(chunks)
        .into_response()
        .with_header(header::CONTENT_TYPE, "application/zip")
        .with_header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"vsee-messenger-data.zip\"",
        )
        .with_status(StatusCode::OK)
        .into_response()
}
