//! The data map: which columns of which tables hold an account's data, and what the purge does
//! with them. Checked against the live schema at start-up, so a new table that references
//! accounts cannot ship without a purge rule.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Deserialize;

use crate::{config::DATAMAP_TOML, db::Database};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMap {
    #[serde(rename = "store")]
    pub stores: Vec<StoreRule>,
    #[serde(default)]
    pub files: Vec<FileStore>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreRule {
    pub table: String,
    pub column: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The rows are the account's: remove them.
    Delete,
    /// The rows are shared with someone else: cut the link to the account.
    Nullify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    pub name: String,
    pub dir: String,
}

/// The table every mapped column points at; the purge removes its row last.
pub const ACCOUNTS_TABLE: &str = "accounts";

#[derive(Debug, thiserror::Error)]
pub enum DataMapError {
    #[error("the data map is not valid TOML of the expected shape: {0}")]
    Parse(String),
    #[error(
        "table {table} references accounts through column {column}, but the data map (config/datamap.toml) has no rule for it: the purge would leave its rows behind"
    )]
    Unmapped { table: String, column: String },
    #[error("the data map names {table}.{column}, which the database does not have")]
    UnknownColumn { table: String, column: String },
    #[error("the data map's {0}")]
    Invalid(String),
    #[error("could not read the schema: {0}")]
    Schema(#[from] sea_orm::DbErr),
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl DataMap {
    pub fn parse(text: &str) -> Result<Self, DataMapError> {
        let map: DataMap = toml::from_str(text).map_err(|e| DataMapError::Parse(e.to_string()))?;
        for rule in &map.stores {
            if !is_identifier(&rule.table) || !is_identifier(&rule.column) {
                return Err(DataMapError::Invalid(format!(
                    "store {}.{} is not a plain identifier",
                    rule.table, rule.column
                )));
            }
            if rule.table == ACCOUNTS_TABLE {
                return Err(DataMapError::Invalid(
                    "accounts row is always removed last; do not map it".into(),
                ));
            }
        }
        for f in &map.files {
            if !is_identifier(&f.name) || !is_identifier(&f.dir) {
                return Err(DataMapError::Invalid(format!(
                    "file store {} is not a plain name",
                    f.name
                )));
            }
        }
        Ok(map)
    }

    /// The compiled-in map, or the file named by `purge.datamap`.
    pub fn load(path: &str) -> Result<Self, DataMapError> {
        if path.is_empty() {
            return Self::parse(DATAMAP_TOML);
        }
        let text = std::fs::read_to_string(path).map_err(|e| DataMapError::Parse(format!("{path}: {e}")))?;
        Self::parse(&text)
    }

    /// Refuses a schema where a column references accounts without a rule, or a rule names a
    /// column that does not exist.
    pub async fn check(&self, db: &Database) -> Result<(), DataMapError> {
        let schema = Schema::read(db).await?;
        for rule in &self.stores {
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
            let mapped = self
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
}

impl StoreRule {
    /// The progress key of this rule: one per (table, column).
    pub fn step(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
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
        let map = DataMap::parse(DATAMAP_TOML).unwrap();
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

    #[test]
    fn odd_identifiers_and_unknown_keys_are_refused() {
        assert!(
            DataMap::parse("[[store]]\ntable = \"x; drop\"\ncolumn = \"a\"\naction = \"delete\"").is_err()
        );
        assert!(DataMap::parse("[[store]]\ntable = \"x\"\ncolumn = \"a\"\naction = \"shred\"").is_err());
        assert!(
            DataMap::parse("[[store]]\ntable = \"x\"\ncolumn = \"a\"\naction = \"delete\"\nextra = 1")
                .is_err()
        );
    }
}
