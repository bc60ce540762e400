//! The third door: polling the help@ mailbox over IMAP (async-imap).
//!
//! Invariant: a message is marked seen (or moved) only after `receive` has stored what it
//! makes (a ticket, a reply, a quarantined copy, or nothing for an auto-reply), and the
//! mailbox's cursor (UIDVALIDITY, last UID) moves only after that. A crash in between reads
//! the message again, which its Message-ID makes a duplicate; a temporary failure stops the
//! pass at that message, so none is skipped. UIDs are only compared within one UIDVALIDITY: a
//! new one starts over from the unseen messages.

use std::{sync::Arc, time::Duration};

use async_imap::{Client, Session};
use futures::TryStreamExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use secrecy::ExposeSecret;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};

use super::{Intake, MAX_MESSAGE_BYTES, receive};
use crate::{
    config::ImapSettings,
    env::Env,
    error::{AppError, AppResult},
    models::mailbox_cursor,
};

/// Connecting, logging in and each command get this long.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollReport {
    /// Messages handed to `receive` and marked (tickets, replies, duplicates, auto-replies).
    pub taken: u32,
    /// Unreadable or too large: quarantined or refused, and marked, so they do not come back.
    pub refused: u32,
    /// A temporary failure stopped the pass before these; the next pass takes them.
    pub left: u32,
}

trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> ImapStream for T {}

type ImapSession = Session<Box<dyn ImapStream>>;

/// One pass over the mailbox: every message after the cursor, oldest first.
pub async fn poll_once(
    env: Env<'_>,
    intake: Intake<'_>,
    settings: &ImapSettings,
) -> anyhow::Result<PollReport> {
    let url = url::Url::parse(&settings.url)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut session = timed(connect(&url, &host, settings)).await?;
    let result = take_new(&mut session, env, intake, settings, &host).await;
    // A failed LOGOUT changes nothing of what was stored.
    let _ = tokio::time::timeout(NETWORK_TIMEOUT, session.logout()).await;
    result
}

async fn take_new(
    session: &mut ImapSession,
    env: Env<'_>,
    intake: Intake<'_>,
    settings: &ImapSettings,
    host: &str,
) -> anyhow::Result<PollReport> {
    let selected = timed(async { Ok(session.select(&settings.mailbox).await?) }).await?;
    let validity = i64::from(selected.uid_validity.unwrap_or(0));
    let key = format!("{}@{host}/{}", settings.username, settings.mailbox);
    let after = cursor(env, &key, validity).await?;
    // From a fresh start (or a new UIDVALIDITY), what nobody has read yet; then every UID
    // past the cursor, read or not (an agent may have opened help@ in a mail client).
    let query = match after {
        Some(last) => format!("UID {}:*", last + 1),
        None => "UNSEEN".to_owned(),
    };
    let found = timed(async { Ok(session.uid_search(&query).await?) }).await?;
    // `n:*` always matches the newest message, even below n.
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|&uid| after.is_none_or(|last| i64::from(uid) > last))
        .collect();
    uids.sort_unstable();
    let sizes = sizes(session, &uids).await?;
    let mut report = PollReport::default();
    for (i, &uid) in uids.iter().enumerate() {
        let size = sizes.iter().find(|(u, _)| *u == uid).map_or(0, |(_, s)| *s);
        let outcome = if size > MAX_MESSAGE_BYTES {
            tracing::warn!(uid, size, "an IMAP message over 10 MiB refused");
            Ok(false)
        } else {
            let raw = body(session, uid).await?;
            match receive(env, intake, &raw).await {
                Ok(_) => Ok(true),
                // Quarantined (unreadable) or refused (too large): done with, not retried.
                Err(AppError::InvalidInput(_) | AppError::PayloadTooLarge { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok(taken) => {
                mark(session, settings, uid).await?;
                save_cursor(env, &key, validity, uid).await?;
                if taken {
                    report.taken += 1;
                } else {
                    report.refused += 1;
                }
            }
            Err(e) => {
                report.left = u32::try_from(uids.len() - i).unwrap_or(u32::MAX);
                tracing::warn!(uid, error = %e.detail(), "IMAP message left for the next pass");
                break;
            }
        }
    }
    Ok(report)
}

async fn connect(url: &url::Url, host: &str, settings: &ImapSettings) -> anyhow::Result<ImapSession> {
    let tls = url.scheme() == "imaps";
    let port = url.port().unwrap_or(if tls { 993 } else { 143 });
    let tcp = TcpStream::connect((host, port)).await?;
    let stream: Box<dyn ImapStream> = if tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = ServerName::try_from(host.to_owned())?;
        Box::new(TlsConnector::from(Arc::new(config)).connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut client = Client::new(stream);
    client
        .read_response()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the IMAP server closed the connection before its greeting"))?;
    client
        .login(&settings.username, settings.password.expose_secret())
        .await
        .map_err(|(e, _)| anyhow::anyhow!("IMAP log-in refused: {e}"))
}

/// Each message's size, so one over the limit is never downloaded.
async fn sizes(session: &mut ImapSession, uids: &[u32]) -> anyhow::Result<Vec<(u32, usize)>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let fetched: Vec<_> = timed(async {
        Ok(session
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await?
            .try_collect()
            .await?)
    })
    .await?;
    Ok(fetched
        .iter()
        .filter_map(|f: &async_imap::types::Fetch| {
            Some((f.uid?, usize::try_from(f.size?).unwrap_or(usize::MAX)))
        })
        .collect())
}

/// The raw message, without setting \Seen (BODY.PEEK): only a stored ticket marks it.
async fn body(session: &mut ImapSession, uid: u32) -> anyhow::Result<Vec<u8>> {
    let fetched: Vec<async_imap::types::Fetch> = timed(async {
        Ok(session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await?
            .try_collect()
            .await?)
    })
    .await?;
    fetched
        .iter()
        .find_map(|f| f.body().map(<[u8]>::to_vec))
        .ok_or_else(|| anyhow::anyhow!("the IMAP server sent no body for UID {uid}"))
}

async fn mark(session: &mut ImapSession, settings: &ImapSettings, uid: u32) -> anyhow::Result<()> {
    timed(async {
        if settings.processed_mailbox.is_empty() {
            let _: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                .await?
                .try_collect()
                .await?;
        } else {
            session
                .uid_mv(uid.to_string(), &settings.processed_mailbox)
                .await?;
        }
        Ok(())
    })
    .await
}

/// The last UID taken, when the cursor is of this UIDVALIDITY.
async fn cursor(env: Env<'_>, key: &str, validity: i64) -> AppResult<Option<i64>> {
    let found = mailbox_cursor::Entity::find_by_id(key.to_owned())
        .one(&env.db.conn)
        .await?;
    Ok(found.filter(|c| c.uid_validity == validity).map(|c| c.last_uid))
}

/// Moves the cursor forward (never back: two pollers at once keep the furthest).
async fn save_cursor(env: Env<'_>, key: &str, validity: i64, uid: u32) -> AppResult<()> {
    let uid = i64::from(uid);
    let moved = mailbox_cursor::Entity::update_many()
        .col_expr(mailbox_cursor::Column::UidValidity, Expr::value(validity))
        .col_expr(mailbox_cursor::Column::LastUid, Expr::value(uid))
        .col_expr(mailbox_cursor::Column::UpdatedAt, Expr::value(env.now()))
        .filter(mailbox_cursor::Column::Mailbox.eq(key))
        .filter(
            mailbox_cursor::Column::UidValidity
                .ne(validity)
                .or(mailbox_cursor::Column::LastUid.lt(uid)),
        )
        .exec(&env.db.conn)
        .await?
        .rows_affected;
    if moved == 0 && cursor(env, key, validity).await?.is_none() {
        let inserted = mailbox_cursor::ActiveModel {
            mailbox: Set(key.to_owned()),
            uid_validity: Set(validity),
            last_uid: Set(uid),
            updated_at: Set(env.now()),
        }
        .insert(&env.db.conn)
        .await;
        match inserted.map_err(AppError::from) {
            // Another poller wrote it first: its position stands.
            Ok(_) | Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn timed<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(NETWORK_TIMEOUT, work)
        .await
        .map_err(|_| anyhow::anyhow!("the IMAP server did not answer within {NETWORK_TIMEOUT:?}"))?
}
