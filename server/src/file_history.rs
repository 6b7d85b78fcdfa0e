//! A history store in one append-only file, so a restarted hub keeps its epoch.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::HistoryError;
use crate::history::{HistoryStore, Restored};
use crate::payload::{Payload, Record};

const MAGIC: &[u8; 8] = b"RWSHIST1";
/// cursor u64, published_at ms u64, kind u8, length u32.
const RECORD_HEADER: usize = 8 + 8 + 1 + 4;
const KIND_TEXT: u8 = 0;
const KIND_BINARY: u8 = 1;
/// Trimmed records are rewritten away once they take this much and at least as much as the
/// kept ones, so the file stays under twice the history plus this.
const COMPACT_MIN_BYTES: u64 = 64 << 10;

/// A [`HistoryStore`] in one file: a header with the epoch, then one record per message,
/// appended before the message is delivered.
///
/// Reopening the file after a restart restores the epoch, the head and the records, so
/// clients resume exactly once across the restart. Each record reaches the operating
/// system in one write before its message is delivered, so it survives the process ending
/// at any point; it is not flushed to the disk per message (after a power loss the file can
/// end earlier than what clients saw, and they are told `cursor_ahead`). A record cut short
/// by a crash is dropped when the file is reopened. Trimmed records are compacted away by
/// rewriting the file (write to `<name>.tmp`, then rename) once they outweigh the kept ones.
///
/// Format (integers little-endian): `RWSHIST1`, head before the first record (u64), epoch
/// length (u16), epoch (UTF-8); then records: cursor (u64), publish time in Unix
/// milliseconds (u64), kind (u8: 0 text, 1 binary), length (u32), payload.
#[derive(Debug)]
pub struct FileHistory {
    path: PathBuf,
    file: File,
    restored: Option<Restored>,
    epoch: Option<String>,
    /// The head before the first record in the file.
    base: u64,
    /// The file offset of every record in the file; record `i` has cursor `base + 1 + i`.
    offsets: VecDeque<u64>,
    /// Where the next record goes.
    end: u64,
}

impl FileHistory {
    /// Opens (or creates) the history file at `path` and reads what it holds.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut history = Self {
            path,
            file,
            restored: None,
            epoch: None,
            base: 0,
            offsets: VecDeque::new(),
            end: 0,
        };
        history.parse(&bytes)?;
        Ok(history)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&mut self, bytes: &[u8]) -> Result<(), HistoryError> {
        let Some((epoch, base, header_len)) = parse_header(bytes)? else {
            // Empty, or a header cut short while a new epoch began: nothing to restore.
            return Ok(());
        };
        let mut records = Vec::new();
        let mut at = header_len;
        while let Some(record_len) = record_len(&bytes[at..]) {
            let record = parse_record(&bytes[at..at + record_len])?;
            if record.cursor != base + 1 + records.len() as u64 {
                return Err(HistoryError::Corrupt("cursors are not consecutive"));
            }
            self.offsets.push_back(at as u64);
            records.push(record);
            at += record_len;
        }
        if at < bytes.len() {
            tracing::warn!(
                dropped_bytes = bytes.len() - at,
                "history file ends with a record cut short; dropping it"
            );
            self.file.set_len(at as u64)?;
        }
        self.end = at as u64;
        self.base = base;
        self.restored = Some(Restored {
            epoch: epoch.clone(),
            head: base + records.len() as u64,
            records,
        });
        self.epoch = Some(epoch);
        Ok(())
    }

    fn write_header(file: &mut File, epoch: &str, base: u64) -> Result<u64, HistoryError> {
        let header = header_bytes(epoch, base)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        Ok(header.len() as u64)
    }

    /// Rewrites the file without the records before index `dead`.
    fn compact(&mut self, dead: usize, epoch: &str) -> Result<(), HistoryError> {
        let cut = self.offsets.get(dead).copied().unwrap_or(self.end);
        let base = self.base + dead as u64;
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp_path = self.path.with_file_name(name);
        let mut tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)?;
        let header_len = Self::write_header(&mut tmp, epoch, base)?;
        self.file.seek(SeekFrom::Start(cut))?;
        let kept = io::copy(&mut (&self.file).take(self.end - cut), &mut tmp)?;
        tmp.sync_all()?;
        std::fs::rename(&tmp_path, &self.path)?;
        self.file = tmp;
        self.base = base;
        self.offsets.drain(..dead);
        for offset in &mut self.offsets {
            *offset = *offset - cut + header_len;
        }
        self.end = header_len + kept;
        Ok(())
    }
}

impl HistoryStore for FileHistory {
    fn load(&mut self) -> Result<Option<Restored>, HistoryError> {
        Ok(self.restored.take())
    }

    fn begin(&mut self, epoch: &str) -> Result<(), HistoryError> {
        self.file.set_len(0)?;
        self.end = Self::write_header(&mut self.file, epoch, 0)?;
        self.epoch = Some(epoch.to_owned());
        self.base = 0;
        self.offsets.clear();
        Ok(())
    }

    fn append(&mut self, record: &Record) -> Result<(), HistoryError> {
        if self.epoch.is_none() {
            return Err(HistoryError::Io(io::Error::other(
                "append before an epoch was loaded or begun",
            )));
        }
        let expected = self.base + 1 + self.offsets.len() as u64;
        if record.cursor != expected {
            return Err(HistoryError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "records must be appended with consecutive cursors",
            )));
        }
        let bytes = record_bytes(record)?;
        self.file.seek(SeekFrom::Start(self.end))?;
        if let Err(error) = self.file.write_all(&bytes) {
            // Leave no partial record behind the next append.
            let _ = self.file.set_len(self.end);
            return Err(error.into());
        }
        self.offsets.push_back(self.end);
        self.end += bytes.len() as u64;
        Ok(())
    }

    fn trim(&mut self, first_kept: u64) -> Result<(), HistoryError> {
        let Some(epoch) = self.epoch.clone() else {
            return Ok(());
        };
        let dead = first_kept.saturating_sub(self.base + 1);
        let dead = usize::try_from(dead)
            .unwrap_or(usize::MAX)
            .min(self.offsets.len());
        let Some(&first) = self.offsets.front() else {
            return Ok(());
        };
        let cut = self.offsets.get(dead).copied().unwrap_or(self.end);
        let (dead_bytes, kept_bytes) = (cut - first, self.end - cut);
        if dead > 0 && dead_bytes >= kept_bytes.max(COMPACT_MIN_BYTES) {
            self.compact(dead, &epoch)?;
        }
        Ok(())
    }
}

fn header_bytes(epoch: &str, base: u64) -> Result<Vec<u8>, HistoryError> {
    let len = u16::try_from(epoch.len()).map_err(|_| {
        HistoryError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "epoch too long",
        ))
    })?;
    let mut header = Vec::with_capacity(MAGIC.len() + 10 + epoch.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&base.to_le_bytes());
    header.extend_from_slice(&len.to_le_bytes());
    header.extend_from_slice(epoch.as_bytes());
    Ok(header)
}

/// The epoch, the base and the header's length; `None` for an empty file or one whose
/// header was cut short.
fn parse_header(bytes: &[u8]) -> Result<Option<(String, u64, usize)>, HistoryError> {
    let fixed = MAGIC.len() + 10;
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(HistoryError::Corrupt(
            "not a resilient-ws-server history file",
        ));
    }
    if bytes.len() < fixed {
        return Ok(None);
    }
    let base = u64::from_le_bytes(array(&bytes[8..16]));
    let len = usize::from(u16::from_le_bytes(array(&bytes[16..18])));
    let Some(epoch) = bytes.get(fixed..fixed + len) else {
        return Ok(None);
    };
    let epoch = std::str::from_utf8(epoch)
        .map_err(|_| HistoryError::Corrupt("the epoch is not UTF-8"))?
        .to_owned();
    Ok(Some((epoch, base, fixed + len)))
}

/// The length of the complete record at the start of `bytes`, if there is one.
fn record_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..RECORD_HEADER)?;
    let len = u32::from_le_bytes(array(&header[17..21])) as usize;
    let total = RECORD_HEADER.checked_add(len)?;
    (bytes.len() >= total).then_some(total)
}

fn parse_record(bytes: &[u8]) -> Result<Record, HistoryError> {
    let cursor = u64::from_le_bytes(array(&bytes[0..8]));
    let millis = u64::from_le_bytes(array(&bytes[8..16]));
    let body = Bytes::copy_from_slice(&bytes[RECORD_HEADER..]);
    let payload = match bytes[16] {
        KIND_TEXT => Payload::Text(
            body.try_into()
                .map_err(|_| HistoryError::Corrupt("a text record is not UTF-8"))?,
        ),
        KIND_BINARY => Payload::Binary(body),
        _ => return Err(HistoryError::Corrupt("unknown record kind")),
    };
    Ok(Record {
        cursor,
        published_at: UNIX_EPOCH + Duration::from_millis(millis),
        payload,
    })
}

fn record_bytes(record: &Record) -> Result<Vec<u8>, HistoryError> {
    let (kind, body): (u8, &[u8]) = match &record.payload {
        Payload::Text(text) => (KIND_TEXT, text.as_bytes()),
        Payload::Binary(bytes) => (KIND_BINARY, bytes),
    };
    let len = u32::try_from(body.len()).map_err(|_| {
        HistoryError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a message over 4 GiB cannot be stored",
        ))
    })?;
    let millis = record
        .published_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut bytes = Vec::with_capacity(RECORD_HEADER + body.len());
    bytes.extend_from_slice(&record.cursor.to_le_bytes());
    bytes.extend_from_slice(&u64::try_from(millis).unwrap_or(u64::MAX).to_le_bytes());
    bytes.push(kind);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(body);
    Ok(bytes)
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().expect("callers slice exactly N bytes")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fresh file path in the temp directory, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "rws-history-unit-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            Self(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn record(cursor: u64, payload: Payload) -> Record {
        Record {
            cursor,
            published_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + cursor),
            payload,
        }
    }

    fn text(cursor: u64) -> Record {
        record(cursor, Payload::from(format!("{{\"seq\":{cursor}}}")))
    }

    #[test]
    fn reopen_restores_epoch_head_and_records() {
        let path = TempPath::new();
        let mut history = FileHistory::open(&path.0).expect("opens");
        assert_eq!(
            history.load().expect("loads"),
            None,
            "a new file holds nothing"
        );
        history.begin("epoch-a").expect("begins");
        let records = vec![text(1), record(2, Payload::from(vec![0, 255, 7])), text(3)];
        for r in &records {
            history.append(r).expect("appends");
        }
        drop(history);
        let restored = FileHistory::open(&path.0)
            .expect("reopens")
            .load()
            .expect("loads")
            .expect("restores");
        assert_eq!(restored.epoch, "epoch-a");
        assert_eq!(restored.head, 3);
        assert_eq!(restored.records, records);
    }

    #[test]
    fn a_record_cut_short_is_dropped() {
        let path = TempPath::new();
        let mut history = FileHistory::open(&path.0).expect("opens");
        history.begin("e").expect("begins");
        for cursor in 1..=3 {
            history.append(&text(cursor)).expect("appends");
        }
        let whole = record_bytes(&text(4)).expect("encodes");
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path.0)
            .expect("opens");
        file.write_all(&whole[..whole.len() - 2]).expect("writes");
        drop((history, file));
        let mut history = FileHistory::open(&path.0).expect("reopens");
        let restored = history.load().expect("loads").expect("restores");
        assert_eq!(restored.head, 3, "the torn record is not restored");
        history.append(&text(4)).expect("appends after the repair");
        drop(history);
        let restored = FileHistory::open(&path.0)
            .expect("opens")
            .load()
            .expect("loads");
        assert_eq!(
            restored.map(|r| r.records),
            Some((1..=4).map(text).collect())
        );
    }

    #[test]
    fn trimmed_records_are_compacted_and_the_head_is_kept() {
        let path = TempPath::new();
        let mut history = FileHistory::open(&path.0).expect("opens");
        history.begin("e").expect("begins");
        let big = |cursor| record(cursor, Payload::from(vec![1; 1000]));
        for cursor in 1..=1000 {
            history.append(&big(cursor)).expect("appends");
            // Keep the latest 10, as a hub with history_max_messages = 10 would.
            history
                .trim(cursor.saturating_sub(9).max(1))
                .expect("trims");
        }
        let size = std::fs::metadata(&path.0).expect("stat").len();
        assert!(
            size < 2 * 10 * 1021 + COMPACT_MIN_BYTES + 100,
            "file grew to {size}"
        );
        drop(history);
        let restored = FileHistory::open(&path.0)
            .expect("reopens")
            .load()
            .expect("loads")
            .expect("restores");
        assert_eq!(restored.head, 1000);
        assert_eq!(restored.records.last(), Some(&big(1000)));
        assert!((10..=80).contains(&restored.records.len()));
    }

    #[test]
    fn compacting_everything_keeps_the_head() {
        let path = TempPath::new();
        let mut history = FileHistory::open(&path.0).expect("opens");
        history.begin("e").expect("begins");
        let huge = |cursor| record(cursor, Payload::from(vec![2; 70 << 10]));
        for cursor in 1..=3 {
            history.append(&huge(cursor)).expect("appends");
        }
        history.trim(4).expect("trims everything");
        let size = std::fs::metadata(&path.0).expect("stat").len();
        assert_eq!(
            size,
            (MAGIC.len() + 10 + 1) as u64,
            "only the header is left"
        );
        drop(history);
        let mut history = FileHistory::open(&path.0).expect("reopens");
        let restored = history.load().expect("loads").expect("restores");
        assert_eq!((restored.epoch.as_str(), restored.head), ("e", 3));
        assert!(restored.records.is_empty());
        history
            .append(&huge(4))
            .expect("cursors go on from the head");
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let path = TempPath::new();
        std::fs::write(&path.0, b"hello, not a history").expect("writes");
        assert!(matches!(
            FileHistory::open(&path.0),
            Err(HistoryError::Corrupt(_))
        ));
    }

    #[test]
    fn appends_need_consecutive_cursors() {
        let path = TempPath::new();
        let mut history = FileHistory::open(&path.0).expect("opens");
        assert!(history.append(&text(1)).is_err(), "no epoch yet");
        history.begin("e").expect("begins");
        assert!(history.append(&text(2)).is_err(), "cursor 1 comes first");
        history.append(&text(1)).expect("appends");
    }
}
