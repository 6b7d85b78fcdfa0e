//! One direction of a proxied connection. A reader fills a small bounded queue; a writer drains it
//! and applies the current fault (hold, delay, slice, cut, slow close). Keeping the reader going
//! while the writer waits is what lets `Latency` pipeline and lets a blackhole notice a client
//! that closes.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use super::fault::{Fault, FaultWatch};
use super::splitmix::SplitMix64;
use super::tap::UpstreamTap;

/// Largest chunk read at once.
const CHUNK_BYTES: usize = 8 * 1024;
/// Chunks in flight per direction: at most `CHUNK_BYTES * QUEUE_CHUNKS` bytes are held.
const QUEUE_CHUNKS: usize = 8;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// Why a direction stopped short of a clean end of stream; the connection is torn down then.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Abort {
    /// `Fault::CutAfter` let its bytes through.
    #[error("cut after {0} downstream bytes")]
    Cut(u64),
    /// The client closed while blackholed: nobody would ever learn of it otherwise.
    #[error("client closed its end while blackholed")]
    ClientClosedWhileBlackholed,
    /// Reading from the source failed (typically a reset).
    #[error("read failed: {0}")]
    Read(io::Error),
    /// Writing to the destination failed (typically a reset or a closed peer).
    #[error("write failed: {0}")]
    Write(io::Error),
}

/// What the reader hands to the writer.
#[derive(Debug)]
enum Item {
    Chunk { bytes: Vec<u8>, read_at: Instant },
    Eof,
}

/// Forwards `reader` to `writer` until end of stream (propagated as a write shutdown) or an abort.
/// `forwarded` counts the bytes written; `rng` draws latency jitter; `tap`, when given, sees
/// every byte read, with the connection's accept index.
pub(crate) async fn run<R, W>(
    reader: R,
    writer: W,
    direction: Direction,
    faults: FaultWatch,
    forwarded: &AtomicU64,
    rng: SplitMix64,
    tap: Option<(&UpstreamTap, u64)>,
) -> Result<(), Abort>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (queue_in, queue_out) = mpsc::channel(QUEUE_CHUNKS);
    let read = read_side(reader, queue_in, direction, faults.clone(), tap);
    let write = WriteSide {
        direction,
        faults,
        forwarded,
        rng,
        latest_release: Instant::now(),
        last_write: None,
        cut: CutBudget::default(),
    }
    .run(writer, queue_out);
    tokio::try_join!(read, write).map(|_| ())
}

async fn read_side<R: AsyncRead + Unpin>(
    mut reader: R,
    queue: mpsc::Sender<Item>,
    direction: Direction,
    faults: FaultWatch,
    tap: Option<(&UpstreamTap, u64)>,
) -> Result<(), Abort> {
    let mut buffer = vec![0; CHUNK_BYTES];
    loop {
        let read = reader.read(&mut buffer).await.map_err(Abort::Read)?;
        if let Some((tap, index)) = tap {
            tap.on_read(index, &buffer[..read]);
        }
        let item = if read == 0 {
            if direction == Direction::Up && faults.current() == Fault::Blackhole {
                return Err(Abort::ClientClosedWhileBlackholed);
            }
            Item::Eof
        } else {
            Item::Chunk {
                bytes: buffer[..read].to_vec(),
                read_at: Instant::now(),
            }
        };
        let at_end = matches!(item, Item::Eof);
        // A closed queue means the writer stopped; its own result ends the connection.
        if queue.send(item).await.is_err() || at_end {
            return Ok(());
        }
    }
}

/// The writing half and the state the faults need across chunks.
struct WriteSide<'a> {
    direction: Direction,
    faults: FaultWatch,
    forwarded: &'a AtomicU64,
    rng: SplitMix64,
    /// Release time of the previous chunk under `Latency`: no chunk may overtake it.
    latest_release: Instant,
    /// When the previous write ended, to space writes under `Slice`.
    last_write: Option<Instant>,
    cut: CutBudget,
}

impl WriteSide<'_> {
    async fn run<W: AsyncWrite + Unpin>(
        mut self,
        mut writer: W,
        mut queue: mpsc::Receiver<Item>,
    ) -> Result<(), Abort> {
        while let Some(item) = queue.recv().await {
            // Held, not dropped: a healed partition delivers what was in flight.
            self.faults
                .wait_until(|fault| *fault != Fault::Blackhole)
                .await;
            let fault = self.faults.current();
            match item {
                Item::Eof => {
                    if let Fault::SlowClose { delay } = fault {
                        sleep(delay).await;
                    }
                    // The peer may be gone already; the direction is over either way.
                    let _ = writer.shutdown().await;
                    return Ok(());
                }
                Item::Chunk { bytes, read_at } => {
                    self.forward(&mut writer, &fault, bytes, read_at).await?
                }
            }
        }
        Ok(())
    }

    async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        fault: &Fault,
        bytes: Vec<u8>,
        read_at: Instant,
    ) -> Result<(), Abort> {
        let (bytes, cut_at) = match (fault, self.direction) {
            (Fault::CutAfter { bytes: limit }, Direction::Down) => self.cut.admit(*limit, bytes),
            _ => {
                self.cut = CutBudget::default();
                (bytes, None)
            }
        };
        match *fault {
            Fault::Latency { base, jitter } => {
                let jitter_nanos = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
                let extra = Duration::from_nanos(self.rng.below(jitter_nanos));
                self.latest_release = (read_at + base + extra).max(self.latest_release);
                sleep_until(self.latest_release).await;
                self.write(writer, &bytes).await?;
            }
            Fault::Slice { max_segment, delay } => {
                for piece in bytes.chunks(max_segment.max(1)) {
                    if let Some(last_write) = self.last_write {
                        sleep_until(last_write + delay).await;
                    }
                    self.write(writer, piece).await?;
                }
            }
            _ => self.write(writer, &bytes).await?,
        }
        match cut_at {
            Some(limit) => Err(Abort::Cut(limit)),
            None => Ok(()),
        }
    }

    async fn write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        bytes: &[u8],
    ) -> Result<(), Abort> {
        if bytes.is_empty() {
            return Ok(());
        }
        writer.write_all(bytes).await.map_err(Abort::Write)?;
        writer.flush().await.map_err(Abort::Write)?;
        self.forwarded
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.last_write = Some(Instant::now());
        Ok(())
    }
}

/// Downstream bytes still allowed under `Fault::CutAfter`, counted from when the fault arrived.
#[derive(Debug, Default)]
struct CutBudget {
    limit: Option<u64>,
    sent: u64,
}

impl CutBudget {
    /// Trims `bytes` to what is left of `limit`; returns the limit too when the cut is due now.
    fn admit(&mut self, limit: u64, mut bytes: Vec<u8>) -> (Vec<u8>, Option<u64>) {
        if self.limit != Some(limit) {
            // A new (or changed) fault starts a fresh count.
            *self = Self {
                limit: Some(limit),
                sent: 0,
            };
        }
        let allowed = limit.saturating_sub(self.sent);
        match usize::try_from(allowed) {
            Ok(allowed) if allowed <= bytes.len() => {
                bytes.truncate(allowed);
                self.sent = limit;
                (bytes, Some(limit))
            }
            _ => {
                self.sent += bytes.len() as u64;
                (bytes, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_budget_trims_the_last_chunk_and_restarts_on_a_new_limit() {
        let mut budget = CutBudget::default();
        assert_eq!(budget.admit(5, vec![1, 2, 3]), (vec![1, 2, 3], None));
        assert_eq!(budget.admit(5, vec![4, 5, 6]), (vec![4, 5], Some(5)));
        assert_eq!(budget.admit(2, vec![7]), (vec![7], None));
        assert_eq!(budget.admit(2, vec![8]), (vec![8], Some(2)));
    }
}
