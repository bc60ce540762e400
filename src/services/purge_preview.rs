//! What a purge of an account would remove, counted without removing anything: the agent sees
//! it before approving. Driven by the same data map as the purge, so the two cannot disagree
//! about which stores hold the account.

use sea_orm::{
    FromQueryResult,
    sea_query::{Alias, Expr, ExprTrait, Func, Query},
};

use crate::{datamap::PurgePlan, env::Env, error::AppResult};

/// One store of the data map and how many of the account's rows it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCount {
    /// `table.column`, as the purge names its steps.
    pub store: String,
    /// delete | nullify
    pub action: &'static str,
    pub rows: i64,
}

#[derive(FromQueryResult)]
struct Counted {
    rows: i64,
}

/// The account's rows in every store of the map, in the map's order. Files are not listed:
/// counting them means reading directories, and the purge reports them afterwards.
pub async fn count(env: Env<'_>, plan: &PurgePlan, account_id: i64) -> AppResult<Vec<StoreCount>> {
    let backend = env.db.conn.get_database_backend();
    let mut counts = Vec::with_capacity(plan.map.stores.len());
    for rule in &plan.map.stores {
        let statement = Query::select()
            .expr_as(Func::count(Expr::col(Alias::new("id"))), Alias::new("rows"))
            .from(Alias::new(rule.table.as_str()))
            .and_where(Expr::col(Alias::new(rule.column.as_str())).eq(account_id))
            .to_owned();
        let rows = Counted::find_by_statement(backend.build(&statement))
            .one(&env.db.conn)
            .await?
            .map_or(0, |c| c.rows);
        counts.push(StoreCount {
            store: rule.step(),
            action: rule.action.as_str(),
            rows,
        });
    }
    Ok(counts)
}
