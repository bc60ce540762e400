//! The purge's chunks: the data map's table rules, then its file stores.

use sea_orm::{
    ConnectionTrait, Value,
    sea_query::{Alias, Expr, ExprTrait, Query},
};

use super::progress::{Counted, record};
use crate::{
    datamap::{Action, StoreRule},
    env::Env,
    error::{AppError, AppResult},
};

/// The map's rules in order, in transactions of at most `chunk` rows across rules: a rule
/// whose rows are all gone leaves the rest of the chunk to the next one.
pub(super) async fn purge_stores(
    env: Env<'_>,
    rid: &str,
    account_id: i64,
    rules: &[&StoreRule],
    chunk: u64,
) -> AppResult<()> {
    let mut next = 0;
    while next < rules.len() {
        let tx = env.db.begin_write().await?;
        let mut budget = chunk;
        let mut counted = Vec::new();
        while let Some(rule) = rules.get(next) {
            let limit = budget;
            let removed = std::cmp::Ord::min(remove_chunk(&tx, rule, account_id, limit).await?, limit);
            budget = limit - removed;
            let done = removed < limit && nothing_left(env, &tx, rule, account_id).await?;
            counted.push(Counted {
                step: rule.step(),
                removed,
                done,
            });
            if !done {
                break;
            }
            next += 1;
        }
        record(&tx, rid, &counted, env.now()).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Removes (or unlinks) at most `limit` of the account's rows under one rule.
async fn remove_chunk<C: ConnectionTrait>(
    conn: &C,
    rule: &StoreRule,
    account_id: i64,
    limit: u64,
) -> AppResult<u64> {
    let table = Alias::new(rule.table.as_str());
    let column = Alias::new(rule.column.as_str());
    // `id IN (SELECT id ... LIMIT n)`: one bounded statement that SQLite and PostgreSQL both run.
    // The outer statement repeats `column = account`: a PostgreSQL transaction that waited
    // for a racing purge re-checks only the outer condition on the rows it then finds, and
    // must skip the ones the other purge already nulled, or it would count them twice.
    let batch = Query::select()
        .column(Alias::new("id"))
        .from(table.clone())
        .and_where(Expr::col(column.clone()).eq(account_id))
        .limit(limit)
        .to_owned();
    let affected = match rule.action {
        Action::Delete => {
            let stmt = Query::delete()
                .from_table(table)
                .and_where(Expr::col(column.clone()).eq(account_id))
                .and_where(Expr::col(Alias::new("id")).in_subquery(batch))
                .to_owned();
            conn.execute(&stmt).await?.rows_affected()
        }
        Action::Nullify => {
            let stmt = Query::update()
                .table(table)
                .value(column.clone(), Value::BigInt(None))
                .and_where(Expr::col(column).eq(account_id))
                .and_where(Expr::col(Alias::new("id")).in_subquery(batch))
                .to_owned();
            conn.execute(&stmt).await?.rows_affected()
        }
    };
    Ok(affected)
}

/// After a short chunk: is the rule finished? On SQLite the transaction has held the write
/// lock since BEGIN, so the chunk saw every row there was and a short one is the end. On
/// PostgreSQL a racing purge may have taken rows from under this one's batch, so a short
/// chunk is not proof: done only when no row of the account is left to see.
async fn nothing_left<C: ConnectionTrait>(
    env: Env<'_>,
    conn: &C,
    rule: &StoreRule,
    account_id: i64,
) -> AppResult<bool> {
    if env.db.backend() == sea_orm::DbBackend::Sqlite {
        return Ok(true);
    }
    let left = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new(rule.table.as_str()))
        .and_where(Expr::col(Alias::new(rule.column.as_str())).eq(account_id))
        .limit(1)
        .to_owned();
    Ok(conn.query_one(&left).await?.is_none())
}

/// Removes the account's files from `dir`, each counted in the transaction that removes it.
/// The step is marked complete by [`super::finish::finish`].
pub(super) async fn purge_files(
    env: Env<'_>,
    dir: &std::path::Path,
    rid: &str,
    account_id: i64,
    step: &str,
) -> AppResult<()> {
    let prefix = format!("{account_id}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AppError::internal(e)),
    };
    for entry in entries {
        let entry = entry.map_err(AppError::internal)?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        // Remove and count under the write lock, as the table chunks do: a purge racing this
        // one either waits and then finds the file gone (counting nothing), or removed it first.
        let tx = env.db.begin_write().await?;
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                let one = Counted {
                    step: step.to_owned(),
                    removed: 1,
                    done: false,
                };
                record(&tx, rid, &[one], env.now()).await?;
                tx.commit().await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tx.rollback().await?,
            Err(e) => return Err(AppError::internal(e)),
        }
    }
    Ok(())
}
