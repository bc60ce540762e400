//! The data map: which columns of which tables hold an account's data, and what the purge does
//! with them. Checked against the live schema at start-up, so a new table that references
//! accounts cannot ship without a purge rule.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

pub use crate::domain::datamap::{ACCOUNTS_TABLE, Action, DataMap, DefinitionError, FileStore, StoreRule};
use crate::{config::DATAMAP_TOML, db::Database};

#[derive(Debug, thiserror::Error)]
pub enum DataMapError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error(
        "table {table} references accounts through column {column}, but the data map (config/datamap.toml) has no rule for it: the purge would leave its rows behind"
    )]
    Unmapped { table: String, column: String },
    #[error("the data map names {table}.{column}, which the database does not have")]
    UnknownColumn { table: String, column: String },
    #[error("could not read the schema: {0}")]
    Schema(#[from] sea_orm::DbErr),
}

/// What the purge works from: the map, where file stores live, and how many rows one
/// statement removes.
#[derive(Debug, Clone)]
pub struct PurgePlan {
    pub map: DataMap,
    /// The storage data directory; file stores are folders under it.
    pub data_dir: std::path::PathBuf,
    pub chunk_size: u64,
    /// How long the account's email and VSee ID cannot sign up again (`services::reuse`).
    pub reuse_cooloff: chrono::Duration,
}

/// The compiled-in map, or the file named by `purge.datamap`.
pub fn load(path: &str) -> Result<DataMap, DataMapError> {
    if path.is_empty() {
        return Ok(DataMap::parse(DATAMAP_TOML)?);
    }
    let text = std::fs::read_to_string(path).map_err(|e| DataMapError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(DataMap::parse(&text)?)
}

/// Refuses a schema where a column references accounts without a rule, or a rule names a
/// column that does not exist.
pub async fn check(map: &DataMap, db: &Database) -> Result<(), DataMapError> {
    let schema = Schema::read(db).await?;
    for rule in &map.stores {
        if !schema
            .columns
            .contains(&(rule.table.clone(), rule.column.clone()))
        {
            return Err(DataMapError::UnknownColumn {
                table: rule.table.clone(),
                column: rule.column.clone(),
            });
        }
    }
    for (table, column) in &schema.references_to_accounts {
        let mapped = map
            .stores
            .iter()
            .any(|r| &r.table == table && &r.column == column);
        if !mapped {
            return Err(DataMapError::Unmapped {
                table: table.clone(),
                column: column.clone(),
            });
        }
    }
    Ok(())
}

struct Schema {
    columns: BTreeSet<(String, String)>,
    references_to_accounts: BTreeSet<(String, String)>,
}

impl Schema {
    async fn read(db: &Database) -> Result<Self, sea_orm::DbErr> {
        let backend = db.backend();
        let (columns_sql, fks_sql) = match backend {
            DbBackend::Sqlite => (
                "SELECT m.name AS tbl, c.name AS col FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) c WHERE m.type = 'table'",
                "SELECT m.name AS tbl, f.\"from\" AS col FROM sqlite_master m \
                 JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = 'accounts'",
            ),
            _ => (
                "SELECT table_name::text AS tbl, column_name::text AS col FROM information_schema.columns \
                 WHERE table_schema = current_schema()",
                "SELECT kcu.table_name::text AS tbl, kcu.column_name::text AS col \
                 FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu \
                   ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema \
                 JOIN information_schema.constraint_column_usage ccu \
                   ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema \
                 WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema() \
                   AND ccu.table_name = 'accounts'",
            ),
        };
        let pairs = |sql: &'static str| async move {
            let rows = db
                .conn
                .query_all_raw(Statement::from_string(backend, sql))
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String>("", "tbl")?, r.try_get::<String>("", "col")?)))
                .collect::<Result<BTreeSet<_>, sea_orm::DbErr>>()
        };
        Ok(Self {
            columns: pairs(columns_sql).await?,
            references_to_accounts: pairs(fks_sql).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_map_parses() {
        let map = load("").unwrap();
        assert!(
            map.stores
                .iter()
                .any(|r| r.table == "messages" && r.action == Action::Delete)
        );
        assert!(
            map.stores
                .iter()
                .any(|r| r.table == "calls" && r.action == Action::Nullify)
        );
        assert_eq!(map.files[0].name, "avatars");
    }
}
