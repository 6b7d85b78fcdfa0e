//! One cell: a fault under a traffic pattern, judged against the contract.
//!
//! The cell starts a feed server and a tapped fault proxy in front of it, connects a client
//! with short timings (`timing.rs`) through the proxy, runs the traffic, waits for it to warm
//! up, injects the fault, holds it, lifts it, waits for recovery, closes the client, reads
//! every event and then asserts, collecting every breach (a failing cell lists them all):
//!
//! - **nothing lost, nothing duplicated (receiving)**: the feed arrived as exactly `1..=k`,
//!   in order, with `k` at least the feed's head once the client was back: every cell has a
//!   feed (a short one when the traffic does not stream), resumed with `?cursor=` from the
//!   last delivered `seq`, so a wrong resume shows up as a gap or a duplicate;
//! - **nothing lost beyond README, nothing duplicated, order kept (sending)**: every message
//!   `send` accepted arrived at the server once and in order (within each connection, and
//!   from each connection to the next: a message a connection never wrote goes out on the
//!   next one after nothing older; bytes an abandoned connection had already written may be
//!   read by the server later than the next connection's, which is the server's reading
//!   order, not the client's sending order), or came back in an `Unsent` event, or was lost
//!   after the client wrote it to its OS socket: every loss must be among the messages the
//!   client counted as written (`stats().messages_sent`) and that did not arrive. The proxy
//!   reads what the client writes, so the report says which losses it saw on the wire and how
//!   much the OS buffers between client and proxy held when connections broke (sampled every
//!   20 ms and as each connection is torn down; see `SendLedger`);
//! - **the client never fails** on these retryable faults (`max_failures(None)`);
//! - **recovery within its bound**: open on a new connection with traffic flowing (new feed
//!   messages, the sender's messages arriving, or a probe arriving) within
//!   [`Fault::recovery_bound`] of the fault lifted (of the stalled application reading again);
//! - **at most one socket**: the proxy's kernel-level audit of client sockets;
//! - **state visible and current**: `state()` and `stats()`, sampled every 10 ms throughout,
//!   never take longer than [`READ_BOUND`], and the state shown before the close is the one
//!   the last state event announced;
//! - **timers alive**, also while the application does not read its events: a break is
//!   noticed (state not open, or a new attempt) within the heartbeat's interval plus timeout;
//!   faults that refuse or drop new connections see at least two attempts while held; a
//!   stalled handshake is abandoned at the connect deadline. README's rule for a slow
//!   consumer makes a message waiting unread proof of life; with the application stalled,
//!   that is the case only on flapping connections that send data, whose liveness is then
//!   judged by the recovery once the application reads;
//! - **backoff**: no delay after a failed attempt below README's floor; a flapping server
//!   gets at most [`FLAP_MAX_ATTEMPTS`] attempts in 1.5 s, the attempt number (the backoff
//!   window) grows past 2, no connection looks open longer than a break takes to notice, and
//!   without new data the failures count up towards the cap; `Retry-After: 0` makes no tight
//!   loop; `Retry-After: 1` is honoured, with jitter on top.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use resilient_ws::{Client, Disconnect, Events, Reason, State};
use resilient_ws_examples::feed_server::{
    ClientPayload, Faults, FeedConfig, FeedServer, FeedServerHandle, Refusal,
};
use resilient_ws_tests::matrix::{Sample, Sampler, SendLedger, Wire, until};
use resilient_ws_tests::proxy::TappedMessage;
use resilient_ws_tests::{Fault as ProxyFault, FaultProxy, Recorder};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};

use crate::fault::{Fault, FlapData};
use crate::timing::{
    BACKOFF_INITIAL, BACKOFF_MAX, CLOSE_TIMEOUT, CONNECT_TIMEOUT, FLAP_MAX_ATTEMPTS,
    HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, NOTICE_SLACK, READ_BOUND, RETRY_AFTER_ONE_MAX_REFUSALS,
    RETRY_AFTER_ZERO_MAX_REFUSALS, SETUP_LIMIT, STABILITY_WINDOW, STALL_TAIL,
};
use crate::traffic::{SEND_FRAME, Sender, Traffic};

/// The streaming feed: messages a second.
const FEED_RATE: u32 = 1000;
/// The short feed of the cells that do not stream: delivered during the warm-up.
const SHORT_FEED: u64 = 5;
/// The stalled application's event buffer, and the short feed that fills it exactly (with
/// the `connecting` and `open` state events): once full, no data waits on the socket, so a
/// dead connection cannot hide behind data the client has not read.
const STALL_EVENTS: usize = 42;
const STALL_FEED: u64 = STALL_EVENTS as u64 - 2;
/// Feed messages (or sent messages) that make the warm-up.
const WARM_MESSAGES: u64 = 50;
/// Sent messages that must arrive after recovery.
const FLOW_MESSAGES: u64 = 20;
/// The proxy's measure of bytes waiting in OS buffers is sampled this often...
const UNREAD_PERIOD: Duration = Duration::from_millis(20);
/// ...so each break may lose unseen what the sender writes in a period, and a few more.
const UNSEEN_SLACK_PER_BREAK: u64 = 48;
/// The floor under every delay after a failed attempt: README's 100 ms, or the backoff's
/// initial window when that is smaller.
const FLOOR: Duration = if BACKOFF_INITIAL.as_millis() < 100 {
    BACKOFF_INITIAL
} else {
    Duration::from_millis(100)
};
/// The probe a client that does not stream sends to show that traffic flows again, and how
/// often it is sent until one arrives.
const PROBE: &str = "probe";
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Runs cell `index` (its seed) of `fault` under `traffic`; `Ok` says what was measured.
pub(crate) async fn run(index: usize, fault: Fault, traffic: Traffic) -> Result<String, String> {
    let seed = 0x00C0_FFEE_u64 + index as u64;
    let cell = Cell::start(fault, traffic, seed).await?;
    let outcome = cell.exercise().await;
    outcome.map_err(|why| format!("{why}\n(client seed {seed:#x})"))
}

/// Everything one cell runs.
struct Cell {
    fault: Fault,
    traffic: Traffic,
    server: FeedServerHandle,
    proxy: Arc<FaultProxy>,
    client: Client,
    consumer: Consumer,
    sampler: Sampler,
    sender: Option<Sender>,
    unread: Option<UnreadWatch>,
    /// The last feed message, for a short feed.
    feed_total: Option<u64>,
}

/// The application's side of the event stream.
enum Consumer {
    /// Reads every event as it comes.
    Reading(Recorder),
    /// Not reading (yet).
    Stalled(Option<Events>),
}

impl Consumer {
    /// Starts reading, if it was not.
    fn resume(&mut self) {
        if let Self::Stalled(events) = self {
            if let Some(events) = events.take() {
                *self = Self::Reading(Recorder::spawn(events));
            }
        }
    }

    /// Reads from now on, and hands over what it read.
    fn into_recorder(mut self) -> Result<Recorder, String> {
        self.resume();
        match self {
            Self::Reading(recorder) => Ok(recorder),
            Self::Stalled(_) => Err("the event stream was lost".into()),
        }
    }
}

/// When the fault broke the connection and when it was lifted.
struct Window {
    broke_at: Instant,
    lifted_at: Instant,
    /// The client's attempts before the fault: recovery needs a new connection.
    attempts_before: u64,
    /// Handshakes the server refused while the fault was held.
    refused_during: u64,
}

impl Cell {
    async fn start(fault: Fault, traffic: Traffic, seed: u64) -> Result<Self, String> {
        let endless = traffic.receives() || fault.needs_endless_feed();
        let feed_total = match (endless, traffic.stalls()) {
            (true, _) => None,
            (false, true) => Some(STALL_FEED),
            (false, false) => Some(SHORT_FEED),
        };
        let server = FeedServer::start(FeedConfig {
            rate: if endless { FEED_RATE } else { 0 },
            total: feed_total,
            payload_bytes: 16,
            received_log_capacity: 1 << 20,
            ..FeedConfig::default()
        })
        .await
        .map_err(|error| format!("feed server: {error}"))?;
        let proxy = Arc::new(
            FaultProxy::start_tapped(server.addr())
                .await
                .map_err(|error| format!("fault proxy: {error}"))?,
        );
        let mut builder = Client::builder(format!("ws://{}/feed", proxy.addr()))
            .cursor_field("seq")
            .resume_query("cursor")
            .backoff(BACKOFF_INITIAL, BACKOFF_MAX)
            .heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .stability_window(STABILITY_WINDOW)
            .close_timeout(CLOSE_TIMEOUT)
            .max_failures(None)
            .seed(seed);
        if traffic.stalls() {
            builder = builder.event_buffer(STALL_EVENTS);
        }
        let (client, events) = builder
            .connect()
            .map_err(|error| format!("client: {error}"))?;
        let consumer = if traffic.stalls() {
            Consumer::Stalled(Some(events))
        } else {
            Consumer::Reading(Recorder::spawn(events))
        };
        let sampler = Sampler::spawn(client.clone());
        let (sender, unread) = if traffic.sends() {
            (
                Some(Sender::spawn(client.clone())),
                Some(UnreadWatch::spawn(Arc::clone(&proxy))),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            fault,
            traffic,
            server,
            proxy,
            client,
            consumer,
            sampler,
            sender,
            unread,
            feed_total,
        })
    }

    async fn exercise(mut self) -> Result<String, String> {
        self.warm_up().await?;
        let window = self.inject().await?;
        let resumed_at = if self.traffic.stalls() {
            sleep(STALL_TAIL).await;
            self.consumer.resume();
            Instant::now()
        } else {
            window.lifted_at
        };
        // A cell that does not recover still closes, reads its events and is judged whole.
        let recovered = self.recover(resumed_at, window.attempts_before).await;
        let state_before_close = self.client.state();
        let ledger = match self.sender.take() {
            Some(sender) => Some(sender.stop().await?),
            None => None,
        };
        // Let the queue drain; whatever does not is flushed by the close or handed back.
        let _ = until("the outbound queue to drain", SETUP_LIMIT, || {
            self.client.stats().queued == 0
        })
        .await;
        let stats = self.client.stats();
        let _ = self.client.close(1000, "cell over").await;
        self.sampler.stop();
        let consumer = std::mem::replace(&mut self.consumer, Consumer::Stalled(None));
        let recorder = &consumer.into_recorder()?;
        wait_terminal(recorder).await?;

        let mut measured = Vec::new();
        let mut problems = Vec::new();
        match recovered {
            Ok(took) if took > self.fault.recovery_bound() => problems.push(format!(
                "recovered in {took:.0?}, beyond the bound of {:?}",
                self.fault.recovery_bound()
            )),
            Ok(took) => measured.push(format!("recovered in {took:.0?}")),
            Err(why) => problems.push(format!("no recovery: {why}")),
        }
        self.judge_timers(&window, recorder, &mut measured, &mut problems);
        judge_states(
            recorder,
            &self.sampler.samples(),
            &state_before_close,
            &mut problems,
        );
        let slowest = self.sampler.slowest_read();
        if slowest > READ_BOUND {
            problems.push(format!(
                "state() and stats() took {slowest:?} to read (bound {READ_BOUND:?})"
            ));
        }
        match judge_feed(&recorder.delivered()) {
            Ok(delivered) => measured.push(format!("feed 1..={delivered} exactly once")),
            Err(why) => problems.push(why),
        }
        if let Some(ledger) = ledger {
            self.judge_sent(&ledger, recorder, &mut measured, &mut problems)
                .await;
        }
        match self.proxy.max_open_client_sockets() {
            Some(open) if open > 1 => problems.push(format!(
                "the client had {open} sockets open at once: {:?}",
                self.proxy.client_socket_overlaps()
            )),
            Some(_) => {}
            None => measured.push("socket audit unavailable".into()),
        }
        measured.push(format!(
            "{} attempts, {} reconnects, {} heartbeat timeouts",
            stats.attempts, stats.reconnects, stats.heartbeat_timeouts
        ));
        self.shutdown().await;
        if problems.is_empty() {
            Ok(measured.join("; "))
        } else {
            Err(format!(
                "{}\nmeasured: {}",
                problems.join("\n"),
                measured.join("; ")
            ))
        }
    }

    /// Open, with the traffic flowing (for a stalled application: its event buffer full).
    async fn warm_up(&self) -> Result<(), String> {
        until("the first open", SETUP_LIMIT, || {
            self.client.state() == State::Open
        })
        .await?;
        let client = &self.client;
        if self.traffic.stalls() {
            until(
                "the stalled application's buffer to fill",
                SETUP_LIMIT,
                || client.stats().messages_delivered >= STALL_FEED,
            )
            .await?;
        } else if self.traffic.receives() {
            until("the feed to flow", SETUP_LIMIT, || {
                client.stats().messages_delivered >= WARM_MESSAGES
            })
            .await?;
        } else {
            let total = self.feed_total.unwrap_or(1).min(SHORT_FEED);
            until("the short feed", SETUP_LIMIT, || {
                client.stats().messages_delivered >= total
            })
            .await?;
        }
        if self.traffic.sends() {
            until("the sent messages to arrive", SETUP_LIMIT, || {
                self.server.stats().client_messages_received >= WARM_MESSAGES
            })
            .await?;
        }
        Ok(())
    }

    /// Injects the fault, holds it, lifts it.
    async fn inject(&self) -> Result<Window, String> {
        let refused_before = self.server.stats().handshakes_refused;
        let attempts_before = self.client.stats().attempts;
        let hold = self.fault.hold();
        let proxy = &self.proxy;
        let server = &self.server;
        let broke_at;
        match self.fault {
            Fault::Reset => {
                broke_at = Instant::now();
                proxy.set_fault(ProxyFault::Reset);
                proxy.set_fault(ProxyFault::None);
            }
            Fault::Blackhole => {
                broke_at = Instant::now();
                proxy.set_fault(ProxyFault::Blackhole);
                sleep(hold).await;
                proxy.set_fault(ProxyFault::None);
            }
            Fault::Stall => {
                proxy.set_fault(ProxyFault::StallHandshake);
                broke_at = Instant::now();
                server.drop_all();
                sleep(hold).await;
                proxy.set_fault(ProxyFault::None);
            }
            Fault::SlowReads => {
                proxy.set_fault(ProxyFault::Slice {
                    max_segment: 64,
                    delay: Duration::from_millis(2),
                });
                sleep(hold).await;
                broke_at = Instant::now();
                proxy.set_fault(ProxyFault::Reset);
                proxy.set_fault(ProxyFault::None);
            }
            Fault::Close(code) => {
                broke_at = Instant::now();
                server
                    .close_all(code)
                    .map_err(|error| format!("close {code}: {error}"))?;
            }
            Fault::Abnormal => {
                broke_at = Instant::now();
                server.drop_all();
            }
            Fault::Restart => {
                broke_at = Instant::now();
                server
                    .restart(hold)
                    .await
                    .map_err(|error| format!("restart: {error}"))?;
                sleep_until(broke_at + hold).await;
                until("the server to listen again", SETUP_LIMIT, || {
                    server.stats().listening
                })
                .await?;
            }
            Fault::Refuse(retry_after) => {
                let refusal = Refusal {
                    status: 503,
                    remaining: None,
                    retry_after_secs: retry_after,
                };
                set_faults(server, |faults| faults.refuse = Some(refusal))?;
                broke_at = Instant::now();
                server.drop_all();
                sleep(hold).await;
                set_faults(server, |faults| faults.refuse = None)?;
            }
            Fault::Flap(data) => {
                set_faults(server, |faults| {
                    faults.drop_every = Some(if data == FlapData::Nothing { 0 } else { 1 });
                    faults.replay_overlap = u64::from(data == FlapData::Replayed);
                })?;
                broke_at = Instant::now();
                server.drop_all();
                sleep(hold).await;
                set_faults(server, |faults| {
                    faults.drop_every = None;
                    faults.replay_overlap = 0;
                })?;
            }
        }
        let lifted_at = Instant::now();
        Ok(Window {
            broke_at,
            lifted_at,
            attempts_before,
            refused_during: server
                .stats()
                .handshakes_refused
                .saturating_sub(refused_before),
        })
    }

    /// Waits for the client to be open on a new connection (every fault breaks the one it
    /// had) with traffic flowing again; returns how long that took from `since`.
    async fn recover(&self, since: Instant, attempts_before: u64) -> Result<Duration, String> {
        let limit = self.fault.recovery_bound() + SETUP_LIMIT;
        let client = &self.client;
        until("the client to open a new connection", limit, || {
            client.state() == State::Open && client.stats().attempts > attempts_before
        })
        .await
        .map_err(|why| format!("{why}; state: {}", client.state()))?;
        let head = self.server.stats().head;
        let target = self.feed_total.unwrap_or(head);
        until(
            &format!("the feed up to {target} after recovery"),
            limit,
            || {
                client
                    .last_cursor()
                    .is_some_and(|cursor| cursor.0 >= target)
            },
        )
        .await
        .map_err(|why| format!("{why}; last cursor {:?}", client.last_cursor()))?;
        if self.traffic.sends() {
            let arrived = self.server.stats().client_messages_received;
            until("sent messages to arrive after recovery", limit, || {
                self.server.stats().client_messages_received >= arrived + FLOW_MESSAGES
            })
            .await?;
        } else {
            // A probe written just before a break may be lost with it (README allows it), so
            // one goes out every PROBE_EVERY until one arrives.
            let mut probes = 0;
            let mut next_probe = Instant::now();
            until("a probe to arrive after recovery", limit, || {
                if Instant::now() >= next_probe {
                    probes += 1;
                    next_probe += PROBE_EVERY;
                    let _ = client.send_text(format!("{PROBE} {probes}"));
                }
                self.server.received().iter().any(|message| {
                    matches!(&message.payload, ClientPayload::Text(text) if text.starts_with(PROBE))
                })
            })
            .await
            .map_err(|why| {
                format!(
                    "{why}: {probes} sent, state {}, {:?}, server {:?}",
                    client.state(),
                    client.stats(),
                    self.server.stats()
                )
            })?;
        }
        Ok(since.elapsed())
    }

    /// Timers alive: the break noticed, attempts while held, the connect deadline, backoff.
    fn judge_timers(
        &self,
        window: &Window,
        recorder: &Recorder,
        measured: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        let samples = self.sampler.samples();
        let at_break = samples
            .iter()
            .rev()
            .find(|sample| sample.at <= window.broke_at);
        let attempts_at_break = at_break.map_or(0, |sample| sample.attempts);
        let was_open = at_break.is_some_and(|sample| sample.state == State::Open);
        let notice_bound = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + NOTICE_SLACK;
        // README's rule for a slow consumer: a message waiting unread is proof of life, and
        // the connection is judged afresh once the application reads again. With a stalled
        // application, new data waits on every flapping connection (a new message, or the
        // replayed one), so liveness is judged only by the recovery once it reads.
        let data_waits = self.traffic.stalls()
            && matches!(self.fault, Fault::Flap(FlapData::New | FlapData::Replayed));
        if data_waits {
            measured.push(
                "liveness judged once the application read (data waited unread while stalled)"
                    .into(),
            );
        }
        let noticed = samples
            .iter()
            .filter(|sample| sample.at >= window.broke_at)
            .find(|sample| sample.state != State::Open || sample.attempts > attempts_at_break)
            .map(|sample| sample.at - window.broke_at);
        match noticed {
            _ if data_waits => {}
            Some(after) if after <= notice_bound => {
                measured.push(format!("break noticed in {after:.0?}"));
            }
            _ if !was_open => measured.push("not open when the fault broke".into()),
            Some(after) => problems.push(format!(
                "the break was noticed only after {after:.0?} (bound {notice_bound:?}): \
                 timers stopped?"
            )),
            None => problems.push(format!(
                "the break was never noticed: state() stayed open, attempts stayed at \
                 {attempts_at_break} (bound {notice_bound:?})"
            )),
        }
        let held = attempts_between(&samples, window.broke_at, window.lifted_at);
        if self.fault.retries_while_held() && !data_waits {
            if held < 2 {
                problems.push(format!(
                    "only {held} attempt(s) in the {:?} the fault was held: timers stopped? \
                     ({})",
                    window.lifted_at - window.broke_at,
                    last_state(&samples, window.lifted_at)
                ));
            } else {
                measured.push(format!("{held} attempts while held"));
            }
        }
        let states = recorder.states();
        let below_floor: Vec<Duration> = states
            .iter()
            .filter_map(|(_, state, _)| match state {
                State::Reconnecting { attempt, delay, .. } if *attempt >= 2 && *delay < FLOOR => {
                    Some(*delay)
                }
                _ => None,
            })
            .collect();
        if !below_floor.is_empty() {
            problems.push(format!(
                "{} delay(s) after a failed attempt below the {FLOOR:?} floor: {:?}",
                below_floor.len(),
                &below_floor[..below_floor.len().min(5)]
            ));
        }
        match self.fault {
            Fault::Stall => {
                // The reason shows in the events, unless a stalled application's queue
                // coalesced those state changes away; then a second attempt while every
                // handshake stalls proves it too, since only the deadline ends one.
                let timed_out = states.iter().any(|(_, _, reason)| {
                    *reason == Reason::Disconnected(Disconnect::ConnectTimeout)
                }) || (self.traffic.stalls() && held >= 2);
                if !timed_out {
                    problems.push(
                        "no handshake was abandoned at the connect deadline while they stalled"
                            .into(),
                    );
                }
            }
            Fault::Refuse(Some(0)) => {
                measured.push(format!("{} refusals", window.refused_during));
                if window.refused_during > RETRY_AFTER_ZERO_MAX_REFUSALS {
                    problems.push(format!(
                        "{} handshakes refused with Retry-After: 0 in {:?} (bound {}): no \
                         floor under the delay",
                        window.refused_during,
                        self.fault.hold(),
                        RETRY_AFTER_ZERO_MAX_REFUSALS
                    ));
                }
            }
            Fault::Refuse(Some(seconds)) => {
                let told = Duration::from_secs(u64::from(seconds));
                let delays = retry_after_delays(&states, told);
                measured.push(format!(
                    "{} refusals, delays after them {delays:?}",
                    window.refused_during
                ));
                if window.refused_during > RETRY_AFTER_ONE_MAX_REFUSALS {
                    problems.push(format!(
                        "{} handshakes refused with Retry-After: {seconds} in {:?} (bound {})",
                        window.refused_during,
                        self.fault.hold(),
                        RETRY_AFTER_ONE_MAX_REFUSALS
                    ));
                }
                if let Some(short) = delays.iter().find(|delay| **delay < told) {
                    problems.push(format!(
                        "retried {short:?} after Retry-After: {seconds}: not honoured"
                    ));
                }
                if !delays.is_empty() && delays.iter().all(|delay| *delay == told) {
                    problems.push(format!(
                        "every retry after Retry-After: {seconds} was exactly {told:?} \
                         ({delays:?}): no jitter on top, so a crowd returns at once"
                    ));
                }
            }
            Fault::Flap(data) => {
                measured.push(format!("{held} attempts while flapping"));
                if held > FLAP_MAX_ATTEMPTS {
                    problems.push(format!(
                        "{held} attempts in {:?} of flapping (bound {FLAP_MAX_ATTEMPTS}): the \
                         backoff does not grow",
                        self.fault.hold()
                    ));
                }
                // Every connection is dropped by the server at once: none may look open for
                // longer than a break takes to notice.
                let stuck = longest_open_stretch(&samples, window.broke_at, window.lifted_at);
                if stuck > notice_bound && !data_waits {
                    problems.push(format!(
                        "while flapping, state() stayed open on one connection for {stuck:.0?} \
                         (bound {notice_bound:?}) though the server drops each at once"
                    ));
                }
                // Sampled, not from the events: a stalled application reads those later.
                let grew_to = samples
                    .iter()
                    .filter(|sample| sample.at >= window.broke_at && sample.at <= window.lifted_at)
                    .filter_map(|sample| match sample.state {
                        State::Reconnecting { attempt, .. } => Some(attempt),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                // A connection the (loaded) server let live for the stability window was
                // healthy: resetting the backoff after it is the rule, not a fault.
                let flapped = stuck < STABILITY_WINDOW;
                if !flapped {
                    measured.push(format!(
                        "a connection stayed open {stuck:.0?}, past the stability window: the \
                         backoff rightly started over"
                    ));
                }
                if grew_to < 3 && !data_waits && flapped {
                    problems.push(format!(
                        "while flapping the retries never went past attempt {grew_to}: every \
                         short connection reset the backoff (it must grow until a connection \
                         stays up for the stability window)"
                    ));
                }
                let failures = samples
                    .iter()
                    .filter(|sample| sample.at <= window.lifted_at)
                    .map(|sample| sample.consecutive_failures)
                    .max()
                    .unwrap_or(0);
                // Two or more: the count grows (a client that resets it on any message, or
                // on a replay, stays at 0 or 1). More depends on the machine's speed.
                if data != FlapData::New && failures < 2 && !data_waits && flapped {
                    problems.push(format!(
                        "at most {failures} consecutive failures counted while flapping {}: \
                         such a session would never reach the failure cap",
                        if data == FlapData::Replayed {
                            "with replays only (a replay is not progress)"
                        } else {
                            "without data"
                        }
                    ));
                }
            }
            _ => {}
        }
    }

    /// Where every accepted message went.
    async fn judge_sent(
        &mut self,
        ledger: &SendLedger,
        recorder: &Recorder,
        measured: &mut Vec<String>,
        problems: &mut Vec<String>,
    ) {
        if let Some(watch) = self.unread.take() {
            watch.stop().await;
        }
        let unread: HashMap<u64, u64> = self
            .proxy
            .most_unread_upstream_bytes()
            .into_iter()
            .collect();
        let connections = self.proxy.connections_accepted();
        let breaks = connections.saturating_sub(1);
        let unread_allowance = unread
            .values()
            .map(|bytes| bytes.div_ceil(SEND_FRAME))
            .sum::<u64>()
            + UNSEEN_SLACK_PER_BREAK * breaks;
        let wire = Wire {
            messages: self
                .proxy
                .upstream_messages()
                .into_iter()
                .map(|(_, messages)| {
                    messages
                        .into_iter()
                        .filter_map(|message| match message {
                            TappedMessage::Text(text) => Some(text),
                            TappedMessage::Binary(_) => None,
                        })
                        .collect()
                })
                .collect(),
            unread_allowance,
            client_written: self.client.stats().messages_sent,
        };
        let arrived: Vec<(u64, String)> = self
            .server
            .received()
            .into_iter()
            .filter_map(|message| match message.payload {
                ClientPayload::Text(text) => Some((message.connection, text)),
                ClientPayload::Binary(_) => None,
            })
            .collect();
        let unsent: Vec<String> = recorder
            .unsent()
            .into_iter()
            .filter_map(|unsent| unsent.payload.as_text().map(str::to_owned))
            .collect();
        let verdict = ledger.judge(&arrived, &unsent, &wire);
        measured.push(format!(
            "{}; {connections} connections, most unread in OS buffers {} bytes",
            verdict.summary(),
            unread.values().max().copied().unwrap_or(0)
        ));
        problems.extend(verdict.problems);
    }

    async fn shutdown(self) {
        let Self {
            server,
            proxy,
            client,
            sampler,
            unread,
            ..
        } = self;
        drop((client, sampler));
        if let Some(unread) = unread {
            unread.stop().await;
        }
        if let Ok(proxy) = Arc::try_unwrap(proxy) {
            let _ = tokio::time::timeout(SETUP_LIMIT, proxy.shutdown()).await;
        }
        let _ = tokio::time::timeout(SETUP_LIMIT, server.shutdown()).await;
    }
}

/// Changes the server's faults.
fn set_faults(server: &FeedServerHandle, change: impl FnOnce(&mut Faults)) -> Result<(), String> {
    let mut faults = server.faults();
    change(&mut faults);
    server
        .set_faults(faults)
        .map_err(|error| format!("server faults: {error}"))
}

/// Waits until the recorder has seen the session end.
async fn wait_terminal(recorder: &Recorder) -> Result<(), String> {
    let deadline = Instant::now() + SETUP_LIMIT;
    loop {
        if recorder
            .states()
            .iter()
            .any(|(_, state, _)| state.is_terminal())
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the session did not end within {SETUP_LIMIT:?} of close(); last state {:?}",
                recorder
                    .states()
                    .last()
                    .map(|(_, state, _)| state.to_string())
            ));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// The feed delivered `1..=k` exactly once in order: returns `k`.
fn judge_feed(delivered: &[u64]) -> Result<u64, String> {
    let mut expected = 1;
    for (position, cursor) in delivered.iter().enumerate() {
        if *cursor != expected {
            let what = if *cursor < expected {
                "a duplicate"
            } else {
                "a gap"
            };
            return Err(format!(
                "feed not exactly-once: message #{} was seq {cursor} where {expected} was due \
                 ({what}); {} delivered",
                position + 1,
                delivered.len()
            ));
        }
        expected += 1;
    }
    Ok(expected - 1)
}

/// No failed state, ever; the state shown before the close is the last one announced.
fn judge_states(
    recorder: &Recorder,
    samples: &[Sample],
    before_close: &State,
    problems: &mut Vec<String>,
) {
    let states = recorder.states();
    if let Some((_, state, reason)) = states
        .iter()
        .find(|(_, state, _)| matches!(state, State::Failed(_)))
    {
        problems.push(format!(
            "the session failed on a retryable fault: {state} ({reason})"
        ));
    } else if let Some(sample) = samples
        .iter()
        .find(|sample| matches!(sample.state, State::Failed(_)))
    {
        problems.push(format!(
            "state() showed {} on a retryable fault",
            sample.state
        ));
    }
    let announced = states
        .iter()
        .take_while(|(_, state, _)| *state != State::Closing)
        .last()
        .map(|(_, state, _)| state.clone());
    if announced.as_ref() != Some(before_close) {
        problems.push(format!(
            "state() showed {before_close} before the close, but the last state event said {}",
            announced.map_or("nothing".into(), |state| state.to_string())
        ));
    }
}

/// Attempts made from `from` to `to`, as sampled.
fn attempts_between(samples: &[Sample], from: Instant, to: Instant) -> u64 {
    let first = samples
        .iter()
        .rev()
        .find(|sample| sample.at <= from)
        .map_or(0, |sample| sample.attempts);
    let last = samples
        .iter()
        .rev()
        .find(|sample| sample.at <= to)
        .map_or(0, |sample| sample.attempts);
    last.saturating_sub(first)
}

/// The longest the samples from `from` to `to` showed the state open on one connection
/// (no new attempt).
fn longest_open_stretch(samples: &[Sample], from: Instant, to: Instant) -> Duration {
    let mut longest = Duration::ZERO;
    let mut since: Option<(Instant, u64)> = None;
    for sample in samples
        .iter()
        .filter(|sample| sample.at >= from && sample.at <= to)
    {
        match since {
            Some((start, attempts))
                if sample.state == State::Open && sample.attempts == attempts =>
            {
                longest = longest.max(sample.at - start);
            }
            _ if sample.state == State::Open => since = Some((sample.at, sample.attempts)),
            _ => since = None,
        }
    }
    longest
}

/// The state sampled last before `at`.
fn last_state(samples: &[Sample], at: Instant) -> String {
    samples
        .iter()
        .rev()
        .find(|sample| sample.at <= at)
        .map_or("no sample".into(), |sample| {
            format!("state then: {}", sample.state)
        })
}

/// The delays chosen after refusals that carried `Retry-After: told`.
fn retry_after_delays(states: &[(Instant, State, Reason)], told: Duration) -> Vec<Duration> {
    states
        .iter()
        .filter_map(|(_, state, reason)| match (state, reason) {
            (
                State::Reconnecting { delay, .. },
                Reason::Disconnected(Disconnect::Rejected {
                    retry_after: Some(retry_after),
                    ..
                }),
            ) if *retry_after == told => Some(*delay),
            _ => None,
        })
        .collect()
}

/// Has the proxy measure, every [`UNREAD_PERIOD`], the bytes each client has written that it
/// has not read (the proxy keeps the most per connection).
struct UnreadWatch {
    task: JoinHandle<()>,
}

impl UnreadWatch {
    fn spawn(proxy: Arc<FaultProxy>) -> Self {
        let task = tokio::spawn(async move {
            loop {
                let _ = proxy.unread_upstream_bytes();
                sleep(UNREAD_PERIOD).await;
            }
        });
        Self { task }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
