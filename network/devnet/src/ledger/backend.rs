//! The ledger database's storage: redb's own file backend, with the pages it writes released
//! from the kernel's page cache once they are synced.
//!
//! redb keeps the pages it writes in its own cache (flushed pages move into its read cache), so
//! a second, kernel copy of them serves few reads. Writing them through the page cache costs
//! more than the copy: each commit dirties pages spread over a large file, and on a virtual
//! machine whose idle memory is handed back to the host, filling a page that went cold costs
//! several times the copy itself. Releasing them after the sync lets the next commit's writes
//! reuse the same few physical pages. Only clean (synced) pages are dropped, so what is durable
//! is unchanged; a failed release leaves the pages cached.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// redb's [`FileBackend`] that releases written ranges from the page cache after each sync.
#[derive(Debug)]
pub(crate) struct ReleasingFile {
    inner: FileBackend,
    /// A second handle on the same open file, for `posix_fadvise`.
    file: File,
    /// Byte ranges written since the last sync, as (start, end).
    written: Mutex<Vec<(u64, u64)>>,
}

impl ReleasingFile {
    /// Wraps `file` (opened read-write) as redb's file backend does.
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let handle = file.try_clone()?;
        let inner = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(ReleasingFile {
            inner,
            file: handle,
            written: Mutex::new(Vec::new()),
        })
    }
}

/// Sorts and merges touching or overlapping ranges.
fn coalesce(ranges: &mut Vec<(u64, u64)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *ranges = merged;
}

impl StorageBackend for ReleasingFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()?;
        let mut ranges = std::mem::take(&mut *self.written.lock().expect("written ranges"));
        coalesce(&mut ranges);
        for (start, end) in ranges {
            super::blockfile::release_cached(&self.file, start, end - start);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)?;
        let end = offset + data.len() as u64;
        let mut written = self.written.lock().expect("written ranges");
        match written.last_mut() {
            // Pages are often flushed in file order: extend the last range instead of growing.
            Some(last) if last.1 == offset => last.1 = end,
            _ => written.push((offset, end)),
        }
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ranges_are_merged_before_release() {
        let mut r = vec![
            (8192, 12288),
            (0, 4096),
            (4096, 8192),
            (20000, 20100),
            (100, 200),
        ];
        coalesce(&mut r);
        assert_eq!(r, vec![(0, 12288), (20000, 20100)]);
    }
}
