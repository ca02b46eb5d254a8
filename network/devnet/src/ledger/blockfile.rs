//! The block store's files, as Fabric's block file manager keeps them: blocks appended one after
//! another to `blockfile_000000`, `blockfile_000001`, ... in a directory of their own, each block
//! preceded by its length as a varint. A file is closed for appends once it would grow past
//! [`MAX_FILE_BYTES`] (Fabric's default `maxBlockfileSize`, 64 MiB).
//!
//! The files hold only bytes; *which* blocks exist is decided by the index in the ledger's redb
//! database (block number → [`BlockLoc`]). Bytes past the last indexed block are the remains of
//! a commit that did not finish and are cut off by [`BlockFiles::recover`] before anything is
//! appended again. See the ledger's module docs for the order of writes and fsyncs.
//!
//! Appends bypass the page cache (`O_DIRECT`) where the file system allows it: a committed
//! block is read back from the ledger's in-memory recent blocks, older ones only on a catch-up
//! or history read, so caching an append-only file's pages buys little, and copying every block
//! into ever new page-cache pages cost more than anything else in an append once memory was
//! full of a large ledger's pages. Direct writes go in whole pages, so each append rewrites the
//! file's last partial page (the same bytes again) ahead of the new ones; the zeros that fill
//! the last page are cut off again before the append is synced.

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
    /// Whether `file` was opened for direct I/O.
    direct: bool,
    /// The file's bytes from its last page boundary up to `len`: a direct write of whole pages
    /// writes them again ahead of the next block.
    tail: Vec<u8>,
    /// The write buffer, kept from one block to the next: a fresh megabyte-sized buffer per
    /// block would be fresh pages for the kernel to fault in every time.
    buf: Vec<u8>,
}

/// Page size of direct writes: their offset, length and memory address are multiples of it.
const DIRECT_ALIGN: usize = 4096;

/// Whether `e` is `EINVAL`, what a file system answers to direct I/O it cannot do.
fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

/// Opens a block file for appends, for direct I/O where the file system supports it (`true`).
fn open_append(path: &Path, truncate: bool) -> io::Result<(File, bool)> {
    let open = |direct: bool| {
        let mut o = OpenOptions::new();
        o.create(true).truncate(truncate).read(true).write(true);
        #[cfg(target_os = "linux")]
        if direct {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        o.open(path)
    };
    if cfg!(target_os = "linux") {
        // tmpfs and some other file systems refuse O_DIRECT.
        match open(true) {
            Ok(f) => return Ok((f, true)),
            Err(e) if refused(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((open(false)?, false))
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
        let (file, direct) = open_append(&path, false)?;
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
        // Read through a buffered handle: direct reads would need aligned buffers too.
        let tail_len = end % DIRECT_ALIGN as u64;
        let mut tail = vec![0u8; tail_len as usize];
        File::open(&path)?.read_exact_at(&mut tail, end - tail_len)?;
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
                direct,
                tail,
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
        let framed_len = prost::encoding::encoded_len_varint(block_len as u64) + block_len;
        if self.len > 0 && self.len + framed_len as u64 > self.max_file_bytes {
            let number = self.number + 1;
            let (file, direct) = open_append(&file_path(&files.dir, number), true)?;
            // The new file's directory entry must be durable before an index entry names it.
            sync_dir(&files.dir)?;
            self.file = file;
            self.direct = direct;
            self.number = number;
            self.len = 0;
            self.tail.clear();
        }
        let start = self.len;
        // The buffer holds: padding up to a page-aligned address, the file's last partial page,
        // the framed block, zeros up to a whole page. With room reserved up front the buffer
        // does not move while `encode` writes, so the aligned address stays aligned.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(DIRECT_ALIGN + self.tail.len() + framed_len + DIRECT_ALIGN);
        let mut pad = buf.as_ptr().align_offset(DIRECT_ALIGN);
        buf.resize(pad, 0);
        buf.extend_from_slice(&self.tail);
        let mut framed_at = buf.len();
        put_varint(&mut buf, block_len as u64);
        encode(&mut buf);
        let mut framed_end = buf.len();
        buf.resize(pad + (framed_end - pad).next_multiple_of(DIRECT_ALIGN), 0);
        if buf[pad..].as_ptr().align_offset(DIRECT_ALIGN) != 0 {
            // `encode` wrote more than `block_len` and the buffer moved: align it again.
            let mut moved = Vec::<u8>::with_capacity(buf.len() - pad + DIRECT_ALIGN);
            let new_pad = moved.as_ptr().align_offset(DIRECT_ALIGN);
            moved.resize(new_pad, 0);
            moved.extend_from_slice(&buf[pad..]);
            (framed_at, framed_end) = (framed_at - pad + new_pad, framed_end - pad + new_pad);
            (buf, pad) = (moved, new_pad);
        }
        let framed = framed_at..framed_end;
        let mut buffered = !self.direct;
        let mut written = Ok(());
        if !buffered {
            let page_start = start - self.tail.len() as u64;
            match self.file.write_all_at(&buf[pad..], page_start) {
                Err(e) if refused(&e) => {
                    // The file system took the open but not the write: buffered from now on,
                    // through the same handle with direct I/O turned off.
                    buffered_from_now_on(&self.file)?;
                    self.direct = false;
                    buffered = true;
                }
                other => written = other,
            }
        }
        let end = start + framed.len() as u64;
        if buffered {
            written = self.file.write_all_at(&buf[framed.clone()], start);
        } else if written.is_ok() && !end.is_multiple_of(DIRECT_ALIGN as u64) {
            // The last page's zeros go: the file ends where its last block does, as recovery
            // checks the index against.
            written = self.file.set_len(end);
        }
        if let Err(e) = written.and_then(|()| self.file.sync_data()) {
            // Leave no partial block behind for the next append to follow.
            let _ = self.file.set_len(start);
            return Err(e.into());
        }
        if buffered {
            // Keeping an append-only file's pages cached buys little (see the module docs);
            // dropped once synced, the same physical pages serve the next append.
            release_cached(&self.file, start, framed.len() as u64);
        }
        let tail_len = (end % DIRECT_ALIGN as u64) as usize;
        self.tail.clear();
        self.tail
            .extend_from_slice(&buf[framed_end - tail_len..framed_end]);
        if buf.capacity() <= KEEP_BUFFER_BYTES {
            self.buf = buf;
        }
        self.len = end;
        Ok(BlockLoc {
            file: self.number,
            offset: end - block_len as u64,
            len: block_len as u64,
        })
    }
}

/// Turns direct I/O off for `file`, so unaligned writes through it are taken.
fn buffered_from_now_on(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let flags = fcntl_getfl(file)?;
        fcntl_setfl(file, flags - OFlags::DIRECT)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    Ok(())
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
    fn appends_of_any_size_read_back_whole_across_page_boundaries_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p.blocks");
        let block = |i: usize| -> Vec<u8> {
            let len = (i * 2_741 + 1) % 9_973 + 1;
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        };
        let (mut files, mut app) = BlockFiles::recover(dir.clone(), None).unwrap();
        let mut locs = Vec::new();
        for i in 0..60 {
            if i == 25 || i == 40 {
                // Reopened at the last block: the next append continues its partial page.
                drop((files, app));
                (files, app) = BlockFiles::recover(dir.clone(), locs.last().copied()).unwrap();
            }
            let b = block(i);
            locs.push(
                app.append(&files, b.len(), |buf| buf.extend_from_slice(&b))
                    .unwrap(),
            );
        }
        for (i, loc) in locs.iter().enumerate() {
            assert_eq!(files.read(*loc).unwrap(), block(i), "block {i}");
        }
        // No padding is left past the last block.
        assert_eq!(
            std::fs::metadata(file_path(&dir, 0)).unwrap().len(),
            locs.last().unwrap().end()
        );
    }

    #[test]
    fn an_encoder_that_writes_more_than_announced_still_lands_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m.blocks");
        let (files, mut app) = BlockFiles::recover(dir, None).unwrap();
        app.append(&files, 10, |b| b.extend_from_slice(&[7u8; 10]))
            .unwrap();
        let big = vec![9u8; 100_000];
        let loc = app
            .append(&files, 100_000, |b| b.extend_from_slice(&big))
            .unwrap();
        assert_eq!(files.read(loc).unwrap(), big);
        // Announced 4 bytes, wrote three pages more: the buffer grows (and moves) under the
        // encoder, and what was written still reaches the file whole.
        let odd = app
            .append(&files, 4, |b| {
                b.extend_from_slice(b"abcd");
                b.extend_from_slice(&vec![1u8; 3 * DIRECT_ALIGN]);
            })
            .unwrap();
        // The location is counted back from the end by the announced length.
        assert_eq!(files.read(odd).unwrap(), vec![1u8; 4]);
        assert_eq!(odd.end(), app.len);
        assert_eq!(files.read(loc).unwrap(), big);
    }

    #[test]
    fn a_handle_with_direct_io_turned_off_takes_unaligned_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d");
        let (file, _direct) = open_append(&path, true).unwrap();
        buffered_from_now_on(&file).unwrap();
        file.write_all_at(b"not a page", 3).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0not a page");
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
