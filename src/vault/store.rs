//! Where epoch keys live: outside the database, so a database backup never holds what opens
//! it. The default store is one file per epoch under a directory of its own (mode 0700, files
//! 0600); destroying a key overwrites its file before removing it. A KMS plugs in behind
//! [`KeyStore`].

use std::{
    fmt,
    io::{self, Write},
    path::{Path, PathBuf},
};

use super::cipher::SymmetricKey;

/// Epoch keys by number. Several processes may share one store: creating an epoch that
/// another process has just created returns theirs.
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The epochs whose keys exist, ascending.
    fn epochs(&self) -> io::Result<Vec<u64>>;
    fn load(&self, epoch: u64) -> io::Result<Option<SymmetricKey>>;
    /// The epoch's key, created if it does not exist yet.
    fn create(&self, epoch: u64) -> io::Result<SymmetricKey>;
    /// Destroys the epoch's key for good; destroying a missing one is not an error.
    fn destroy(&self, epoch: u64) -> io::Result<()>;
    /// How long ago (real time) the epoch's key was created; `None` when it does not exist.
    fn age(&self, epoch: u64) -> io::Result<Option<std::time::Duration>>;
}

#[derive(Debug, Clone)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self { dir: dir.to_owned() })
    }

    fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("epoch-{epoch}.key"))
    }

    fn parse(text: &str) -> io::Result<SymmetricKey> {
        hex::decode(text.trim())
            .ok()
            .and_then(|b| SymmetricKey::from_bytes(&b))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an epoch key file is malformed"))
    }
}

impl KeyStore for FileKeyStore {
    fn epochs(&self) -> io::Result<Vec<u64>> {
        let mut epochs = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_prefix("epoch-")
                .and_then(|rest| rest.strip_suffix(".key"))
                .and_then(|n| n.parse().ok())
            {
                epochs.push(n);
            }
        }
        epochs.sort_unstable();
        Ok(epochs)
    }

    fn load(&self, epoch: u64) -> io::Result<Option<SymmetricKey>> {
        match std::fs::read_to_string(self.path(epoch)) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, epoch: u64) -> io::Result<SymmetricKey> {
        if let Some(existing) = self.load(epoch)? {
            return Ok(existing);
        }
        let path = self.path(epoch);
        let key = SymmetricKey::generate();
        // Written under a temporary name and linked into place, so no process ever reads a
        // half-written key; `hard_link` fails if another process got there first.
        let temp = self
            .dir
            .join(format!(".epoch-{epoch}.{}.tmp", uuid::Uuid::new_v4()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(hex::encode(key.expose()).as_bytes())?;
        file.sync_all()?;
        let linked = std::fs::hard_link(&temp, &path);
        std::fs::remove_file(&temp)?;
        match linked {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(key)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self
                .load(epoch)?
                .ok_or_else(|| io::Error::other("an epoch key vanished while it was being created")),
            Err(e) => Err(e),
        }
    }

    fn destroy(&self, epoch: u64) -> io::Result<()> {
        let path = self.path(epoch);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // Overwritten in place first: on a file system that writes in place, the key's bytes
        // are gone from the disk, not only unlinked.
        let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.write_all(&vec![0u8; usize::try_from(len).unwrap_or(64)])?;
        file.sync_all()?;
        drop(file);
        std::fs::remove_file(&path)?;
        sync_dir(&self.dir)
    }

    fn age(&self, epoch: u64) -> io::Result<Option<std::time::Duration>> {
        match std::fs::metadata(self.path(epoch)) {
            Ok(m) => Ok(Some(m.modified()?.elapsed().unwrap_or_default())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_listed_and_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::open(&dir.path().join("keys")).unwrap();
        assert!(store.epochs().unwrap().is_empty());
        let first = store.create(3).unwrap();
        let again = store.create(3).unwrap();
        assert_eq!(
            first.expose(),
            again.expose(),
            "a second create returns the first key"
        );
        store.create(4).unwrap();
        assert_eq!(store.epochs().unwrap(), vec![3, 4]);
        assert_eq!(store.load(3).unwrap().unwrap().expose(), first.expose());
        store.destroy(3).unwrap();
        store.destroy(3).unwrap();
        assert!(store.load(3).unwrap().is_none());
        assert_eq!(store.epochs().unwrap(), vec![4]);
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let store = FileKeyStore::open(&keys).unwrap();
        store.create(1).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&keys.join("epoch-1.key")), 0o600);
    }
}
