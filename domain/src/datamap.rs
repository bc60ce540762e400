//! The data map's definition: which columns of which tables hold an account's data, and what
//! the purge does with them. Parsing only; `erasure::services::datamap` checks a parsed map
//! against the live schema.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMap {
    #[serde(rename = "store")]
    pub stores: Vec<StoreRule>,
    #[serde(default)]
    pub files: Vec<FileStore>,
    /// What a deletion keeps, and why: every erasure receipt names these.
    #[serde(default)]
    pub retained: Vec<Retention>,
    /// How each text column of the tables holding an account's data is stored.
    #[serde(default, rename = "column")]
    pub columns: Vec<ColumnRule>,
}

/// How one text column is stored: start-up refuses a text column of an account's tables
/// without one, and a rule that says otherwise than the code does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    pub table: String,
    pub column: String,
    pub storage: Storage,
    /// Why a `plain` column holds nothing personal (required for those).
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Encrypted under its owner's data key: unreadable once the key is destroyed.
    Sealed,
    /// A keyed hash (the ledger's pseudonym): searchable, not reversible.
    Blind,
    /// In clear: nothing personal (the rule says why).
    Plain,
}

/// Something a deletion keeps on purpose (a record the law or other people need), why, and for
/// how long (`None`: as long as that reason lasts).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub store: String,
    pub why: String,
    #[serde(default)]
    pub days: Option<u32>,
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

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Nullify => "nullify",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    pub name: String,
    pub dir: String,
}

/// The table every mapped column points at; the purge removes its row last.
pub const ACCOUNTS_TABLE: &str = "accounts";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("the data map is not valid TOML of the expected shape: {0}")]
    Parse(String),
    #[error("the data map's {0}")]
    Invalid(String),
}

/// Names go into SQL statements and paths: plain identifiers only.
fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl DataMap {
    pub fn parse(text: &str) -> Result<Self, DefinitionError> {
        let map: DataMap = toml::from_str(text).map_err(|e| DefinitionError::Parse(e.to_string()))?;
        for rule in &map.stores {
            if !is_identifier(&rule.table) || !is_identifier(&rule.column) {
                return Err(DefinitionError::Invalid(format!(
                    "store {}.{} is not a plain identifier",
                    rule.table, rule.column
                )));
            }
            if rule.table == ACCOUNTS_TABLE {
                return Err(DefinitionError::Invalid(
                    "accounts row is always removed last; do not map it".into(),
                ));
            }
        }
        for r in &map.retained {
            if !is_identifier(&r.store) || r.why.trim().is_empty() || r.why.len() > 500 {
                return Err(DefinitionError::Invalid(format!(
                    "retained store {} needs a plain name and a reason of at most 500 characters",
                    r.store
                )));
            }
        }
        for c in &map.columns {
            if !is_identifier(&c.table) || !is_identifier(&c.column) {
                return Err(DefinitionError::Invalid(format!(
                    "column {}.{} is not a plain identifier",
                    c.table, c.column
                )));
            }
            if c.storage == Storage::Plain && c.why.as_deref().is_none_or(|w| w.trim().is_empty()) {
                return Err(DefinitionError::Invalid(format!(
                    "column {}.{} is plain: say why it holds nothing personal",
                    c.table, c.column
                )));
            }
        }
        for f in &map.files {
            if !is_identifier(&f.name) || !is_identifier(&f.dir) {
                return Err(DefinitionError::Invalid(format!(
                    "file store {} is not a plain name",
                    f.name
                )));
            }
        }
        Ok(map)
    }
}

impl StoreRule {
    /// The progress key of this rule: one per (table, column).
    pub fn step(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(DataMap::parse("[[files]]\nname = \"a\"\ndir = \"../etc\"\n[[store]]\ntable = \"x\"\ncolumn = \"a\"\naction = \"delete\"").is_err());
    }

    #[test]
    fn a_retention_needs_a_store_and_a_reason() {
        let store = "[[store]]\ntable = \"x\"\ncolumn = \"a\"\naction = \"delete\"\n";
        let map = DataMap::parse(&format!(
            "{store}[[retained]]\nstore = \"invoices\"\nwhy = \"tax law\"\ndays = 3650"
        ))
        .unwrap();
        assert_eq!(map.retained[0].days, Some(3650));
        assert!(DataMap::parse(&format!("{store}[[retained]]\nstore = \"invoices\"\nwhy = \" \"")).is_err());
        assert!(DataMap::parse(&format!("{store}[[retained]]\nstore = \"a b\"\nwhy = \"x\"")).is_err());
    }

    #[test]
    fn a_plain_column_says_why_and_every_column_is_a_plain_identifier() {
        let store = "[[store]]\ntable = \"x\"\ncolumn = \"a\"\naction = \"delete\"\n";
        let map = DataMap::parse(&format!(
            "{store}[[column]]\ntable = \"x\"\ncolumn = \"b\"\nstorage = \"sealed\"\n\
             [[column]]\ntable = \"x\"\ncolumn = \"c\"\nstorage = \"plain\"\nwhy = \"a status\""
        ))
        .unwrap();
        assert_eq!(map.columns[0].storage, Storage::Sealed);
        assert_eq!(map.columns[1].why.as_deref(), Some("a status"));
        for bad in [
            "[[column]]\ntable = \"x\"\ncolumn = \"c\"\nstorage = \"plain\"",
            "[[column]]\ntable = \"x\"\ncolumn = \"c\"\nstorage = \"plain\"\nwhy = \" \"",
            "[[column]]\ntable = \"x\"\ncolumn = \"c;\"\nstorage = \"sealed\"",
            "[[column]]\ntable = \"x\"\ncolumn = \"c\"\nstorage = \"hashed\"",
        ] {
            assert!(DataMap::parse(&format!("{store}{bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plain_map_parses() {
        let map = DataMap::parse(
            "[[store]]\ntable = \"messages\"\ncolumn = \"sender_id\"\naction = \"delete\"\n\
             [[files]]\nname = \"avatars\"\ndir = \"avatars\"",
        )
        .unwrap();
        assert_eq!(map.stores[0].step(), "messages.sender_id");
        assert_eq!(map.files[0].dir, "avatars");
    }
}
