//! The tombstone journal: every deletion's ledger entry (its sequence number, its hash, and
//! the pseudonyms of its subjects), appended beside the key store, outside the database. A
//! restored database has lost the entries made after its backup; this journal has not, and
//! names the accounts the backup brought back (`services::restore_guard`).
//!
//! One line per record, tab-separated: `deleted seq hash vsee_id email` (a subject the entry
//! did not have is `-`), or `settled seq hash` once a guard has dealt with a restore: the
//! database's ledger head at that moment. Appends of one line are atomic (O_APPEND).

use std::{
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
};

const FILE: &str = "tombstones.log";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Deleted {
        seq: i64,
        hash: String,
        vsee_id: String,
        email: Option<String>,
    },
    Settled {
        seq: i64,
        hash: String,
    },
}

impl Record {
    /// The ledger entry the record was written with.
    pub fn head(&self) -> (i64, &str) {
        match self {
            Self::Deleted { seq, hash, .. } | Self::Settled { seq, hash } => (*seq, hash),
        }
    }

    fn line(&self) -> String {
        match self {
            Self::Deleted {
                seq,
                hash,
                vsee_id,
                email,
            } => format!(
                "deleted\t{seq}\t{hash}\t{vsee_id}\t{}\n",
                email.as_deref().unwrap_or("-")
            ),
            Self::Settled { seq, hash } => format!("settled\t{seq}\t{hash}\n"),
        }
    }

    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["deleted", seq, hash, vsee_id, email] => Some(Self::Deleted {
                seq: seq.parse().ok()?,
                hash: (*hash).to_owned(),
                vsee_id: (*vsee_id).to_owned(),
                email: (*email != "-").then(|| (*email).to_owned()),
            }),
            ["settled", seq, hash] => Some(Self::Settled {
                seq: seq.parse().ok()?,
                hash: (*hash).to_owned(),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tombstones {
    path: PathBuf,
}

impl Tombstones {
    /// The journal in the key store's directory.
    pub fn in_dir(dir: &Path) -> Self {
        Self { path: dir.join(FILE) }
    }

    pub fn append(&self, record: &Record) -> io::Result<()> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends `records` in order, with one sync.
    pub fn append_all(&self, records: &[Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&self.path)?;
        // A line torn by a crash is ended first, so these records stand on lines of their own.
        let len = file.metadata()?.len();
        let mut lines: String = records.iter().map(Record::line).collect();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                lines.insert(0, '\n');
            }
        }
        file.write_all(lines.as_bytes())?;
        file.sync_data()
    }

    /// Every record, oldest first; a torn last line (a crash mid-write) is skipped.
    pub fn read(&self) -> io::Result<Vec<Record>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for line in io::BufReader::new(file).lines() {
            if let Some(record) = Record::parse(line?.trim_end()) {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The records in the journal's last `bytes` (whole lines only), oldest first: what the
    /// start-up check reads instead of the whole journal.
    pub fn tail(&self, bytes: u64) -> io::Result<Vec<Record>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let start = len.saturating_sub(bytes);
        file.seek(SeekFrom::Start(start))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        // A cut first line is not a record.
        let whole = if start > 0 {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            text.as_str()
        };
        Ok(whole
            .lines()
            .filter_map(|l| Record::parse(l.trim_end()))
            .collect())
    }

    /// The newest record, if any.
    pub fn last(&self) -> io::Result<Option<Record>> {
        Ok(self.tail(64 * 1024)?.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Tombstones::in_dir(dir.path());
        assert!(journal.last().unwrap().is_none());
        let deleted = Record::Deleted {
            seq: 4,
            hash: "ab".into(),
            vsee_id: "p1".into(),
            email: None,
        };
        journal.append(&deleted).unwrap();
        let settled = Record::Settled {
            seq: 3,
            hash: "cd".into(),
        };
        journal.append(&settled).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap()
            .write_all(b"deleted\t5\tef")
            .unwrap();
        assert_eq!(journal.read().unwrap(), vec![deleted.clone(), settled.clone()]);
        assert_eq!(journal.last().unwrap(), Some(settled.clone()));
        journal.append(&deleted).unwrap();
        assert_eq!(
            journal.read().unwrap(),
            vec![deleted.clone(), settled.clone(), deleted.clone()]
        );
        // A tail that cuts a line keeps only the whole ones after it.
        assert_eq!(journal.tail(20).unwrap(), vec![deleted]);
        assert_eq!(journal.tail(1 << 20).unwrap().len(), 3);
    }
}
