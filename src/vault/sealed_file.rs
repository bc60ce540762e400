//! A file sealed in chunks under an owner's data key, for what is too large to seal whole
//! (takeout archives). The writer is seekable, because a ZIP writer goes back to fill in each
//! entry's header; the reader streams, opening one chunk at a time, so neither holds more
//! than a chunk in memory.
//!
//! Layout: [`MAGIC`], then chunks of [`CHUNK`] clear bytes (the last may be shorter), each
//! stored as nonce ‖ ciphertext ‖ tag. A chunk's associated data is the file's place (its
//! store and name), its owner and its index: a chunk moved to another position, file or
//! owner does not open. A truncated file is caught by its length, which the caller keeps
//! (the `data_exports.bytes` column) and [`SealedFileReader`] checks at the end.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
};

use tokio::io::AsyncReadExt;

use super::DataKey;

/// Clear bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// What a file written by [`SealedFileWriter`] starts with.
pub const MAGIC: &[u8; 8] = b"ERSEAL1\n";
/// A chunk's size on disk: nonce, ciphertext and tag.
const STORED: usize = CHUNK + super::cipher::OVERHEAD;

fn stored_at(index: u64) -> u64 {
    MAGIC.len() as u64 + index * STORED as u64
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Writes a sealed file through `Write + Seek`, one chunk buffered (opened again from disk
/// when the writer goes back to it).
pub struct SealedFileWriter {
    file: File,
    key: DataKey,
    place: String,
    /// The clear position and length.
    pos: u64,
    len: u64,
    /// The chunk held in `buf` (clear), and whether it differs from what is on disk.
    held: Option<u64>,
    buf: Vec<u8>,
    dirty: bool,
    chunks_on_disk: u64,
}

impl SealedFileWriter {
    /// A new sealed file at `path` (created or emptied) for the place `place`. Opened for
    /// reading too: going back to a sealed chunk opens it.
    pub fn create(path: &std::path::Path, key: DataKey, place: &str) -> io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.write_all(MAGIC)?;
        Ok(Self {
            file,
            key,
            place: place.to_owned(),
            pos: 0,
            len: 0,
            held: None,
            buf: Vec::with_capacity(CHUNK),
            dirty: false,
            chunks_on_disk: 0,
        })
    }

    /// Seals what is buffered, syncs the file and returns the clear length.
    pub fn finish(mut self) -> io::Result<u64> {
        self.flush_chunk()?;
        self.file.sync_all()?;
        Ok(self.len)
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        let Some(index) = self.held.filter(|_| self.dirty) else {
            return Ok(());
        };
        let sealed = self.key.seal_chunk(&self.place, index, &self.buf);
        self.file.seek(SeekFrom::Start(stored_at(index)))?;
        self.file.write_all(&sealed)?;
        self.chunks_on_disk = self.chunks_on_disk.max(index + 1);
        self.dirty = false;
        Ok(())
    }

    /// Makes chunk `index` the buffered one.
    fn hold(&mut self, index: u64) -> io::Result<()> {
        if self.held == Some(index) {
            return Ok(());
        }
        self.flush_chunk()?;
        self.buf.clear();
        self.held = Some(index);
        if index < self.chunks_on_disk {
            self.file.seek(SeekFrom::Start(stored_at(index)))?;
            let mut stored = Vec::with_capacity(STORED);
            (&mut self.file).take(STORED as u64).read_to_end(&mut stored)?;
            let opened = self.key.open_chunk(&self.place, index, &stored).map_err(broken)?;
            self.buf.extend_from_slice(&opened);
        }
        Ok(())
    }
}

impl Write for SealedFileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let index = self.pos / CHUNK as u64;
        self.hold(index)?;
        let at = usize::try_from(self.pos % CHUNK as u64).map_err(broken)?;
        let n = data.len().min(CHUNK - at);
        if self.buf.len() < at + n {
            self.buf.resize(at + n, 0);
        }
        self.buf[at..at + n].copy_from_slice(&data[..n]);
        self.dirty = true;
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    /// Chunks are sealed as the writer leaves them and at [`finish`](Self::finish): a chunk
    /// sealed early would be sealed again, with nothing gained.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SealedFileWriter {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        // Within what is written: a gap would be a chunk never sealed.
        match target {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a sealed file is written without gaps",
            )),
        }
    }
}

/// Reads a sealed file chunk by chunk; a file without [`MAGIC`] (written before sealing) is
/// passed through as it is.
pub struct SealedFileReader {
    file: tokio::fs::File,
    key: DataKey,
    place: String,
    index: u64,
    read: u64,
    expected: u64,
    sealed: bool,
    head: Option<Vec<u8>>,
}

impl SealedFileReader {
    /// Opens `file`, which must hold `expected` clear bytes.
    pub async fn new(
        mut file: tokio::fs::File,
        key: DataKey,
        place: &str,
        expected: u64,
    ) -> io::Result<Self> {
        let mut head = Vec::with_capacity(MAGIC.len());
        (&mut file)
            .take(MAGIC.len() as u64)
            .read_to_end(&mut head)
            .await?;
        let sealed = head == MAGIC;
        Ok(Self {
            file,
            key,
            place: place.to_owned(),
            index: 0,
            read: 0,
            expected,
            sealed,
            head: (!sealed && !head.is_empty()).then_some(head),
        })
    }

    /// The next clear bytes, or `None` at the end. An altered, reordered or truncated file
    /// is an error, never short or wrong bytes.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if let Some(head) = self.head.take() {
            return Ok(Some(head));
        }
        let mut stored = Vec::with_capacity(STORED);
        (&mut self.file)
            .take(STORED as u64)
            .read_to_end(&mut stored)
            .await?;
        if stored.is_empty() {
            if self.sealed && self.read != self.expected {
                return Err(broken("a sealed file is shorter than it was written"));
            }
            return Ok(None);
        }
        if !self.sealed {
            return Ok(Some(stored));
        }
        let opened = self
            .key
            .open_chunk(&self.place, self.index, &stored)
            .map_err(broken)?;
        self.index += 1;
        self.read += opened.len() as u64;
        Ok(Some(opened.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{DataKey, SymmetricKey};

    fn key() -> DataKey {
        DataKey::for_tests("account:7", SymmetricKey::generate())
    }

    fn written(key: &DataKey, path: &std::path::Path, f: impl FnOnce(&mut SealedFileWriter)) -> u64 {
        let mut w = SealedFileWriter::create(path, key.clone(), "exports/a.zip").unwrap();
        f(&mut w);
        w.finish().unwrap()
    }

    async fn read_all(
        key: &DataKey,
        path: &std::path::Path,
        place: &str,
        expected: u64,
    ) -> io::Result<Vec<u8>> {
        let file = tokio::fs::File::open(path).await?;
        let mut r = SealedFileReader::new(file, key.clone(), place, expected).await?;
        let mut out = Vec::new();
        while let Some(chunk) = r.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn what_is_written_with_seeks_back_reads_back_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let key = key();
        let body: Vec<u8> = (0..(3 * CHUNK + 123)).map(|i| (i % 251) as u8).collect();
        let len = written(&key, &path, |w| {
            w.write_all(b"HEADER--").unwrap();
            w.write_all(&body).unwrap();
            // As a ZIP writer does: back to the header, fill it in, forward to the end.
            w.seek(SeekFrom::Start(0)).unwrap();
            w.write_all(b"header!!").unwrap();
            w.seek(SeekFrom::End(0)).unwrap();
            w.write_all(b"trailer").unwrap();
            assert!(w.seek(SeekFrom::Start(10 * CHUNK as u64)).is_err());
        });
        let mut expected = b"header!!".to_vec();
        expected.extend_from_slice(&body);
        expected.extend_from_slice(b"trailer");
        assert_eq!(len, expected.len() as u64);
        assert_eq!(
            read_all(&key, &path, "exports/a.zip", len).await.unwrap(),
            expected
        );

        let stored = std::fs::read(&path).unwrap();
        assert!(stored.starts_with(MAGIC));
        assert!(
            !stored
                .windows(8)
                .any(|w| w == b"header!!" || w == &body[1000..1008])
        );
        // Another place, another key, a truncation, a swapped chunk: refused, never bytes.
        assert!(read_all(&key, &path, "exports/b.zip", len).await.is_err());
        assert!(read_all(&self::key(), &path, "exports/a.zip", len).await.is_err());
        std::fs::write(&path, &stored[..stored.len() - STORED.min(100)]).unwrap();
        assert!(read_all(&key, &path, "exports/a.zip", len).await.is_err());
        let first = stored_at(0) as usize..stored_at(1) as usize;
        let second = stored_at(1) as usize..stored_at(2) as usize;
        let mut swapped = stored.clone();
        swapped[first.clone()].copy_from_slice(&stored[second.clone()]);
        swapped[second].copy_from_slice(&stored[first]);
        std::fs::write(&path, &swapped).unwrap();
        assert!(read_all(&key, &path, "exports/a.zip", len).await.is_err());
        // Dropping whole chunks from the end is caught by the length.
        std::fs::write(&path, &stored[..stored_at(2) as usize]).unwrap();
        assert!(read_all(&key, &path, "exports/a.zip", len).await.is_err());
    }

    #[tokio::test]
    async fn a_file_from_before_sealing_passes_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.zip");
        std::fs::write(&path, b"PK\x03\x04 an old archive").unwrap();
        let read = read_all(&key(), &path, "exports/old.zip", 0).await.unwrap();
        assert_eq!(read, b"PK\x03\x04 an old archive");
    }

    #[tokio::test]
    async fn an_empty_sealed_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e");
        let key = key();
        let len = written(&key, &path, |_| {});
        assert_eq!(len, 0);
        assert!(
            read_all(&key, &path, "exports/a.zip", 0)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
