//! The data map: which columns of which tables hold an account's data, and what the purge does
//! with them. Checked against the live schema at start-up, so a new table that references
//! accounts cannot ship without a purge rule.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

pub use crate::domain::datamap::{
    ACCOUNTS_TABLE, Action, ColumnRule, DataMap, DefinitionError, FileStore, Storage, StoreRule,
};
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
    #[error(
        "{table}.{column} holds text in a table of an account's data, but the data map (config/datamap.toml) does not say how it is stored (sealed, blind or plain)"
    )]
    Unclassified { table: String, column: String },
    #[error("the data map says {table}.{column} is {said}, but the service stores it otherwise")]
    Misclassified {
        table: String,
        column: String,
        said: &'static str,
    },
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
    check_columns(map, &schema)?;
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

/// Every text column of the accounts table, of the tables the purge covers and of any table a
/// rule names has a rule, and the rules say what the code does: `sealed` exactly for the
/// columns it seals, `blind` for its blind indexes.
fn check_columns(map: &DataMap, schema: &Schema) -> Result<(), DataMapError> {
    let tables: BTreeSet<&str> = map
        .stores
        .iter()
        .map(|r| r.table.as_str())
        .chain(map.columns.iter().map(|c| c.table.as_str()))
        .chain([ACCOUNTS_TABLE])
        .collect();
    let rule = |table: &str, column: &str| {
        map.columns
            .iter()
            .find(|c| c.table == table && c.column == column)
    };
    for (table, column) in &schema.text_columns {
        if tables.contains(table.as_str()) && rule(table, column).is_none() {
            return Err(DataMapError::Unclassified {
                table: table.clone(),
                column: column.clone(),
            });
        }
    }
    for c in &map.columns {
        if !schema.columns.contains(&(c.table.clone(), c.column.clone())) {
            return Err(DataMapError::UnknownColumn {
                table: c.table.clone(),
                column: c.column.clone(),
            });
        }
        let place = format!("{}.{}", c.table, c.column);
        let sealed_by_code = crate::vault::columns::SEALED.contains(&place.as_str());
        let blind_by_code = crate::vault::columns::BLIND.contains(&place.as_str());
        let said = match c.storage {
            Storage::Sealed if !sealed_by_code => Some("sealed"),
            Storage::Blind if !blind_by_code => Some("blind"),
            Storage::Plain if sealed_by_code || blind_by_code => Some("plain"),
            _ => None,
        };
        if let Some(said) = said {
            return Err(DataMapError::Misclassified {
                table: c.table.clone(),
                column: c.column.clone(),
                said,
            });
        }
    }
    Ok(())
}

struct Schema {
    columns: BTreeSet<(String, String)>,
    text_columns: BTreeSet<(String, String)>,
    references_to_accounts: BTreeSet<(String, String)>,
}

impl Schema {
    async fn read(db: &Database) -> Result<Self, sea_orm::DbErr> {
        let backend = db.backend();
        let (columns_sql, text_sql, fks_sql) = match backend {
            DbBackend::Sqlite => (
                "SELECT m.name AS tbl, c.name AS col FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) c WHERE m.type = 'table'",
                "SELECT m.name AS tbl, c.name AS col FROM sqlite_master m \
                 JOIN pragma_table_info(m.name) c WHERE m.type = 'table' \
                 AND (lower(c.type) IN ('text', 'clob') OR lower(c.type) LIKE 'varchar%' OR lower(c.type) LIKE 'char%')",
                "SELECT m.name AS tbl, f.\"from\" AS col FROM sqlite_master m \
                 JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = 'accounts'",
            ),
            _ => (
                "SELECT table_name::text AS tbl, column_name::text AS col FROM information_schema.columns \
                 WHERE table_schema = current_schema()",
                "SELECT table_name::text AS tbl, column_name::text AS col FROM information_schema.columns \
                 WHERE table_schema = current_schema() \
                   AND data_type IN ('text', 'character varying', 'character')",
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
            text_columns: pairs(text_sql).await?,
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
