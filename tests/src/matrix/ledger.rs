//! What the application sent, and where each message went.
//!
//! Each message is numbered (`<prefix><n:08> ` padded to a fixed size). Once the session is
//! over, every message `send` accepted must have arrived at the server exactly once and in
//! order, or come back in an `Unsent` event, or have been lost with a connection after the
//! client had written it to its OS socket (which WebSocket, without acknowledgements, allows).
//! The last case is split by what a tapped proxy saw: a message the proxy read had certainly
//! been written; one it never saw had to be in the OS buffers between the client and the
//! proxy when the connection broke, and those are bounded by measuring them
//! ([`Wire::unread_allowance`]).

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

/// Numbered messages for a client to send, and which of them `send` accepted.
#[derive(Debug, Clone)]
pub struct SendLedger {
    prefix: String,
    size: usize,
    next: u64,
    accepted: Vec<u64>,
    refused: u64,
}

/// What was seen between the client and the server.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    /// Texts the proxy read from the client, per connection (see
    /// [`FaultProxy::upstream_messages`](crate::FaultProxy::upstream_messages)).
    pub messages: Vec<Vec<String>>,
    /// How many messages could have been in the OS buffers between the client and the
    /// proxy when connections broke, all breaks together, as sampled: a figure to report.
    pub unread_allowance: u64,
    /// The messages the client says it wrote to its OS socket (`stats().messages_sent`):
    /// README allows a loss only among those.
    pub client_written: u64,
}

/// Where the accepted messages went, and what breaks the contract.
#[derive(Debug, Clone, Default)]
pub struct SendVerdict {
    /// Messages `send` accepted.
    pub accepted: usize,
    /// Messages `send` handed back (queue full or session over).
    pub refused: u64,
    /// Accepted messages that arrived at the server.
    pub arrived: usize,
    /// Accepted messages that came back in `Unsent` events.
    pub unsent: usize,
    /// Accepted messages lost after the proxy had read them (written to the OS: allowed).
    pub lost_on_wire: Vec<u64>,
    /// Accepted messages lost that the proxy never read.
    pub lost_unseen: Vec<u64>,
    /// Messages the client wrote more than once (on different connections).
    pub rewritten: usize,
    /// How many messages the OS buffers held at most when connections broke, as sampled.
    pub unseen_allowance: u64,
    /// Every breach of the contract found.
    pub problems: Vec<String>,
}

impl SendLedger {
    /// A ledger of messages `<prefix><n:08> ` padded with `.` to `size` bytes.
    pub fn new(prefix: &str, size: usize) -> Self {
        Self {
            prefix: prefix.to_owned(),
            size,
            next: 1,
            accepted: Vec::new(),
            refused: 0,
        }
    }

    /// The next message to send, with its number.
    pub fn next_message(&mut self) -> (u64, String) {
        let n = self.next;
        self.next += 1;
        let mut text = format!("{}{n:08} ", self.prefix);
        while text.len() < self.size {
            text.push('.');
        }
        (n, text)
    }

    /// `send` accepted message `n`.
    pub fn accepted(&mut self, n: u64) {
        self.accepted.push(n);
    }

    /// `send` handed a message back.
    pub fn refused(&mut self) {
        self.refused += 1;
    }

    /// How many messages `send` accepted so far.
    pub fn accepted_count(&self) -> usize {
        self.accepted.len()
    }

    /// The number of a message of this ledger, `None` for any other text.
    pub fn number(&self, text: &str) -> Option<u64> {
        let rest = text.strip_prefix(&self.prefix)?;
        rest.get(..8)?.parse().ok()
    }

    /// Judges the session: `arrived` are the texts the server received, in order, each with
    /// the number of the connection it came on; `unsent` the texts handed back in `Unsent`
    /// events; `wire` what the proxy saw.
    pub fn judge(&self, arrived: &[(u64, String)], unsent: &[String], wire: &Wire) -> SendVerdict {
        let accepted: BTreeSet<u64> = self.accepted.iter().copied().collect();
        let mut verdict = SendVerdict {
            accepted: self.accepted.len(),
            refused: self.refused,
            unseen_allowance: wire.unread_allowance,
            ..SendVerdict::default()
        };
        let mut problems = Vec::new();

        let mut got = HashSet::new();
        let mut not_accepted = Vec::new();
        let mut twice = Vec::new();
        let numbered: Vec<(u64, u64)> = arrived
            .iter()
            .filter_map(|(connection, text)| Some((*connection, self.number(text)?)))
            .collect();
        for &(connection, n) in &numbered {
            if !accepted.contains(&n) {
                not_accepted.push(n);
            }
            if !got.insert(n) {
                twice.push(format!("{n} (connection {connection})"));
            }
        }
        // The order the client promises: within a connection, and from each connection to
        // the next (what one never wrote goes out on the next, after nothing older). Bytes
        // an abandoned connection had already written may still sit in the server's
        // buffers and be read after the next connection's first messages: the server's
        // reading order across connections is not the client's to keep.
        let mut by_connection = numbered;
        by_connection.sort_by_key(|&(connection, _)| connection);
        let mut disorder = Vec::new();
        let mut last = (0, 0);
        for (connection, n) in by_connection {
            if n < last.0 {
                disorder.push(format!(
                    "{n} (connection {connection}) after {} (connection {})",
                    last.0, last.1
                ));
            }
            if n > last.0 {
                last = (n, connection);
            }
        }
        verdict.arrived = got.len();
        if !not_accepted.is_empty() {
            problems.push(format!(
                "{} message(s) arrived that send had handed back: {}",
                not_accepted.len(),
                ranges(&not_accepted)
            ));
        }
        if !twice.is_empty() {
            problems.push(format!(
                "{} message(s) arrived twice: {}",
                twice.len(),
                first_few(&twice)
            ));
        }
        if !disorder.is_empty() {
            problems.push(format!(
                "{} message(s) arrived out of order: {}",
                disorder.len(),
                first_few(&disorder)
            ));
        }

        let mut handed_back = HashSet::new();
        let mut both = Vec::new();
        let mut unsent_twice = Vec::new();
        for n in unsent.iter().filter_map(|text| self.number(text)) {
            if got.contains(&n) {
                both.push(n);
            }
            if !handed_back.insert(n) {
                unsent_twice.push(n);
            }
        }
        verdict.unsent = handed_back.len();
        if !both.is_empty() {
            problems.push(format!(
                "{} message(s) arrived and also came back as unsent: {}",
                both.len(),
                ranges(&both)
            ));
        }
        if !unsent_twice.is_empty() {
            problems.push(format!(
                "{} message(s) came back as unsent twice: {}",
                unsent_twice.len(),
                ranges(&unsent_twice)
            ));
        }

        let mut seen = HashSet::new();
        for connection in &wire.messages {
            for n in connection.iter().filter_map(|text| self.number(text)) {
                if !seen.insert(n) {
                    verdict.rewritten += 1;
                }
            }
        }
        for n in &self.accepted {
            if got.contains(n) || handed_back.contains(n) {
                continue;
            }
            if seen.contains(n) {
                verdict.lost_on_wire.push(*n);
            } else {
                verdict.lost_unseen.push(*n);
            }
        }
        // Lost may only be what the client wrote to its OS socket and the server never
        // read. The proxy's view corroborates the losses it saw; the ones it did not see
        // (a burst written just before the server closed falls between its samples of the
        // OS buffers) must still be covered by what the client counted as written.
        let lost = (verdict.lost_on_wire.len() + verdict.lost_unseen.len()) as u64;
        let written_not_arrived = wire.client_written.saturating_sub(verdict.arrived as u64);
        if lost > written_not_arrived {
            problems.push(format!(
                "{lost} accepted message(s) were lost without an Unsent event ({} unseen by \
                 the proxy: {}), but the client wrote only {} that did not arrive \
                 (messages_sent {}, arrived {})",
                verdict.lost_unseen.len(),
                ranges(&verdict.lost_unseen),
                written_not_arrived,
                wire.client_written,
                verdict.arrived
            ));
        }
        verdict.problems = problems;
        verdict
    }
}

impl SendVerdict {
    /// One line of figures.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "sent {} accepted ({} handed back by send), {} arrived, {} unsent",
            self.accepted, self.refused, self.arrived, self.unsent
        );
        let _ = write!(
            line,
            ", lost {} after reaching the wire",
            self.lost_on_wire.len()
        );
        if !self.lost_on_wire.is_empty() {
            let _ = write!(line, " ({})", ranges(&self.lost_on_wire));
        }
        let _ = write!(
            line,
            ", {} unseen by the proxy (OS buffers held up to {})",
            self.lost_unseen.len(),
            self.unseen_allowance
        );
        if self.rewritten > 0 {
            let _ = write!(line, ", {} written twice", self.rewritten);
        }
        line
    }
}

/// The first few items, and how many more.
fn first_few(items: &[String]) -> String {
    const MOST: usize = 4;
    let mut text = items
        .iter()
        .take(MOST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MOST {
        let _ = write!(text, " and {} more", items.len() - MOST);
    }
    text
}

/// `3-7, 12, 20-21`, at most a few ranges.
fn ranges(numbers: &[u64]) -> String {
    const MOST: usize = 6;
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &n in numbers {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let mut text: Vec<String> = runs
        .iter()
        .take(MOST)
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            }
        })
        .collect();
    if runs.len() > MOST {
        text.push(format!("and {} more runs", runs.len() - MOST));
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_of(accepted: u64) -> (SendLedger, Vec<String>) {
        let mut ledger = SendLedger::new("m", 16);
        let texts = (0..accepted)
            .map(|_| {
                let (n, text) = ledger.next_message();
                ledger.accepted(n);
                text
            })
            .collect();
        (ledger, texts)
    }

    #[test]
    fn numbers_its_messages() {
        let mut ledger = SendLedger::new("m", 16);
        let (n, text) = ledger.next_message();
        assert_eq!((n, text.as_str()), (1, "m00000001 ......"));
        assert_eq!(ledger.number(&text), Some(1));
        assert_eq!(ledger.number("probe"), None);
    }

    #[test]
    fn sorts_losses_by_what_the_wire_saw() {
        let (ledger, texts) = ledger_of(6);
        let arrived = vec![(1, texts[0].clone()), (2, texts[3].clone())];
        let unsent = vec![texts[5].clone()];
        let wire = Wire {
            messages: vec![texts[..3].to_vec(), texts[3..4].to_vec()],
            unread_allowance: 1,
            // The two that arrived and the three lost.
            client_written: 5,
        };
        let verdict = ledger.judge(&arrived, &unsent, &wire);
        assert_eq!(verdict.lost_on_wire, vec![2, 3]);
        assert_eq!(verdict.lost_unseen, vec![5]);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        // A client that wrote one fewer than it lost made a message vanish.
        let tighter = Wire {
            client_written: 4,
            ..wire
        };
        assert_eq!(ledger.judge(&arrived, &unsent, &tighter).problems.len(), 1);
    }

    #[test]
    fn finds_duplicates_and_disorder() {
        let (ledger, texts) = ledger_of(3);
        let arrived = vec![
            (1, texts[1].clone()),
            (1, texts[0].clone()),
            (2, texts[1].clone()),
        ];
        let verdict = ledger.judge(&arrived, &[texts[0].clone()], &Wire::default());
        assert_eq!(verdict.problems.len(), 4, "{:?}", verdict.problems);
    }
}
