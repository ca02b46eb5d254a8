//! The block store's files, as Fabric's block file manager keeps them: blocks appended one after
//! another to `blockfile_000000`, `blockfile_000001`, ... in a directory of their own, each block
//! preceded by its length as a varint. A file is closed for appends once it would grow past
//! [`MAX_FILE_BYTES`] (Fabric's default `maxBlockfileSize`, 64 MiB).
//!
//! The files hold only bytes; *which* blocks exist is decided by the index in the ledger's redb
//! database (block number → [`BlockLoc`]). Bytes past the last indexed block are the remains of
//! a commit that did not finish and are cut off by [`BlockFiles::recover`] before anything is
//! appended again. See the ledger's module docs for the order of writes and fsyncs.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::codec::put_varint;
use super::LedgerError;

/// Size past which the next block starts a new file (Fabric's default `maxBlockfileSize`).
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

const PREFIX: &str = "blockfile_";

/// Where one block's bytes are: file number, offset of the block bytes (after the length prefix)
/// and their length. Stored in the index as a redb `(u32, u64, u64)` tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockLoc {
    pub(crate) file: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl From<(u32, u64, u64)> for BlockLoc {
    fn from((file, offset, len): (u32, u64, u64)) -> Self {
        BlockLoc { file, offset, len }
    }
}

impl From<BlockLoc> for (u32, u64, u64) {
    fn from(loc: BlockLoc) -> Self {
        (loc.file, loc.offset, loc.len)
    }
}

impl BlockLoc {
    /// The file offset just past this block.
    fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The directory of a ledger's block files, next to its database file: `police-service.redb`
/// keeps its blocks in `police-service.blocks/`.
pub(crate) fn dir_for(db_path: &Path) -> PathBuf {
    let stem = if db_path.extension().is_some_and(|e| e == "redb") {
        db_path.with_extension("")
    } else {
        db_path.to_path_buf()
    };
    let mut name = stem.file_name().unwrap_or_default().to_os_string();
    name.push(".blocks");
    stem.with_file_name(name)
}

fn file_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{PREFIX}{number:06}"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Read access to the block files, shared by every snapshot of a ledger.
#[derive(Debug)]
pub(crate) struct BlockFiles {
    dir: PathBuf,
    /// Read handles by file number, opened on first use (a Deliver stream reads every block).
    readers: RwLock<HashMap<u32, Arc<File>>>,
}

/// The append end of the block files; owned by the committing side (under the ledger's tip lock).
#[derive(Debug)]
pub(crate) struct Appender {
    file: File,
    number: u32,
    len: u64,
    max_file_bytes: u64,
    /// The framing buffer, kept from one block to the next: a fresh megabyte-sized buffer per
    /// block would be fresh pages for the kernel to fault in every time.
    buf: Vec<u8>,
}

/// Largest framing buffer kept for the next block (above Fabric's 10 MiB absolute max block
/// size, so every block of a usual channel reuses it).
const KEEP_BUFFER_BYTES: usize = 16 * 1024 * 1024;

impl BlockFiles {
    /// Opens the block files in `dir` and cuts them back to `last`, the location of the last
    /// block the index records (`None`: no block): bytes past it, and files after its file, are
    /// from a commit whose index entry never became durable. Fails if the files are *shorter*
    /// than the index says (they were damaged or removed: the ledger cannot serve its blocks).
    pub(crate) fn recover(
        dir: PathBuf,
        last: Option<BlockLoc>,
    ) -> Result<(Self, Appender), LedgerError> {
        std::fs::create_dir_all(&dir)?;
        let (number, end) = last.map_or((0, 0), |l| (l.file, l.end()));
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if n > number {
                std::fs::remove_file(entry.path())?;
            }
        }
        let path = file_path(&dir, number);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len < end {
            return Err(LedgerError::Inconsistent(format!(
                "{} holds {len} bytes but the block index records blocks up to byte {end}",
                path.display()
            )));
        }
        if len > end {
            file.set_len(end)?;
            file.sync_all()?;
        }
        sync_dir(&dir)?;
        let files = BlockFiles {
            dir,
            readers: RwLock::new(HashMap::new()),
        };
        Ok((
            files,
            Appender {
                file,
                number,
                len: end,
                max_file_bytes: MAX_FILE_BYTES,
                buf: Vec::new(),
            },
        ))
    }

    /// The block bytes at `loc`.
    pub(crate) fn read(&self, loc: BlockLoc) -> Result<Vec<u8>, LedgerError> {
        let file = self.reader(loc.file)?;
        let len =
            usize::try_from(loc.len).map_err(|_| LedgerError::Corrupt("block length".into()))?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, loc.offset)?;
        Ok(buf)
    }

    fn reader(&self, number: u32) -> Result<Arc<File>, LedgerError> {
        if let Some(f) = self
            .readers
            .read()
            .expect("block file readers")
            .get(&number)
        {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(File::open(file_path(&self.dir, number))?);
        self.readers
            .write()
            .expect("block file readers")
            .insert(number, Arc::clone(&f));
        Ok(f)
    }
}

impl Appender {
    /// Appends one block of `block_len` bytes, which `encode` writes, preceded by its varint
    /// length, and makes it durable (`fdatasync`) before returning its location. Starts a new
    /// file first when this one would grow past [`MAX_FILE_BYTES`].
    pub(crate) fn append(
        &mut self,
        files: &BlockFiles,
        block_len: usize,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<BlockLoc, LedgerError> {
        let mut framed = std::mem::take(&mut self.buf);
        framed.clear();
        framed.reserve(block_len + 10);
        put_varint(&mut framed, block_len as u64);
        encode(&mut framed);
        let written = self.write_framed(files, &framed, block_len);
        if framed.capacity() <= KEEP_BUFFER_BYTES {
            self.buf = framed;
        }
        written
    }

    fn write_framed(
        &mut self,
        files: &BlockFiles,
        framed: &[u8],
        block_len: usize,
    ) -> Result<BlockLoc, LedgerError> {
        if self.len > 0 && self.len + framed.len() as u64 > self.max_file_bytes {
            let number = self.number + 1;
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(file_path(&files.dir, number))?;
            // The new file's directory entry must be durable before an index entry names it.
            sync_dir(&files.dir)?;
            self.file = file;
            self.number = number;
            self.len = 0;
        }
        let start = self.len;
        let written = self
            .file
            .write_all_at(framed, start)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave no partial block behind for the next append to follow.
            let _ = self.file.set_len(start);
            return Err(e.into());
        }
        // A committed block is read back from the ledger's in-memory recent blocks, older ones
        // only on the rare catch-up or history read, so keeping an append-only file's pages
        // cached buys little; filling ever new page-cache pages is what costs (on a virtual
        // machine a fresh page can cost several times the copy). Dropped, the same physical
        // pages serve the next append.
        release_cached(&self.file, start, framed.len() as u64);
        self.len = start + framed.len() as u64;
        Ok(BlockLoc {
            file: self.number,
            offset: self.len - block_len as u64,
            len: block_len as u64,
        })
    }
}

/// Lets the kernel drop the page-cache pages of a range of `file` that has been written and
/// synced. Only clean pages are dropped, so nothing is lost; on failure they stay cached.
pub(crate) fn release_cached(file: &File, offset: u64, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let _ = (file, offset, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_file_directory_sits_beside_the_database() {
        assert_eq!(
            dir_for(Path::new("/d/police-service.redb")),
            PathBuf::from("/d/police-service.blocks")
        );
        assert_eq!(dir_for(Path::new("/d/l")), PathBuf::from("/d/l.blocks"));
    }

    #[test]
    fn recovery_cuts_bytes_past_the_last_indexed_block() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("x.blocks");
        let (files, mut app) = BlockFiles::recover(dir.clone(), None).unwrap();
        let a = app
            .append(&files, 3, |b| b.extend_from_slice(b"abc"))
            .unwrap();
        let b = app
            .append(&files, 2, |b| b.extend_from_slice(b"de"))
            .unwrap();
        assert_eq!(files.read(a).unwrap(), b"abc");
        assert_eq!(files.read(b).unwrap(), b"de");
        drop((files, app));
        // Only `a` made it into the index: `b` is cut off and the next append takes its place.
        let (files, mut app) = BlockFiles::recover(dir.clone(), Some(a)).unwrap();
        assert_eq!(
            std::fs::metadata(file_path(&dir, 0)).unwrap().len(),
            a.end()
        );
        let c = app.append(&files, 1, |b| b.push(b'f')).unwrap();
        assert_eq!(c.offset, b.offset);
        assert_eq!(files.read(c).unwrap(), b"f");
        // An index that records more than the files hold is refused.
        drop((files, app));
        let beyond = BlockLoc {
            file: 0,
            offset: c.offset,
            len: 100,
        };
        assert!(matches!(
            BlockFiles::recover(dir, Some(beyond)),
            Err(LedgerError::Inconsistent(_))
        ));
    }

    #[test]
    fn a_full_file_is_followed_by_the_next_and_recovery_drops_unindexed_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r.blocks");
        let (files, mut app) = BlockFiles::recover(dir.clone(), None).unwrap();
        app.max_file_bytes = 10;
        let a = app
            .append(&files, 6, |b| b.extend_from_slice(b"aaaaaa"))
            .unwrap();
        let b = app
            .append(&files, 6, |b| b.extend_from_slice(b"bbbbbb"))
            .unwrap();
        let c = app
            .append(&files, 6, |b| b.extend_from_slice(b"cccccc"))
            .unwrap();
        assert_eq!((a.file, b.file, c.file), (0, 1, 2));
        assert_eq!((a.offset, b.offset), (1, 1));
        assert_eq!(files.read(b).unwrap(), b"bbbbbb");
        drop((files, app));
        let (files, _app) = BlockFiles::recover(dir.clone(), Some(a)).unwrap();
        assert!(!file_path(&dir, 1).exists());
        assert!(!file_path(&dir, 2).exists());
        assert_eq!(files.read(a).unwrap(), b"aaaaaa");
    }
}
