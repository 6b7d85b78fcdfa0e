//! Scenarios: the session against a fake server with a fake clock. Each runs with several
//! seeds; a failure names its seed.

mod sim;

use std::time::Duration;

use resilient_ws_core::{
    Command, Cursor, Disconnect, Event, Failure, Payload, Probe, Reason, ResumeMode, SendError,
    SocketEvent, State, Timestamp,
};
use sim::{After, Behaviour, Sim, test_config};

const SEEDS: std::ops::Range<u64> = 0..16;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn failure_of(sim: &Sim) -> Failure {
    match sim.session.state() {
        State::Failed(failure) => failure.clone(),
        other => panic!("{}: expected failed, got {other:?}", sim.context()),
    }
}

#[test]
fn server_down_then_up_delivers_everything() {
    for seed in SEEDS {
        let script = vec![
            Behaviour::Refuse,
            Behaviour::Refuse,
            Behaviour::Refuse,
            Behaviour::serve_all(),
        ];
        let mut sim = Sim::new(test_config(), seed, script);
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        assert_eq!(sim.opens().len(), 4, "{}", sim.context());
        assert_eq!(sim.session.stats().attempts, 4);
        // Each wait came from a window that doubles: 200 ms, 400 ms, 800 ms.
        let delays: Vec<Duration> = sim
            .states()
            .iter()
            .filter_map(|(_, state)| match state {
                State::Reconnecting { delay, .. } => Some(*delay),
                _ => None,
            })
            .collect();
        assert_eq!(delays.len(), 3);
        for (failures, delay) in (1u32..).zip(&delays) {
            assert!(
                *delay <= Duration::from_millis(100) * 2u32.pow(failures),
                "{}",
                sim.context()
            );
        }
    }
}

#[test]
fn flapping_server_exhausts_the_failure_cap() {
    for seed in SEEDS {
        let mut config = test_config();
        config.max_failures = Some(5);
        // Accepts, then drops before the stability window: every attempt is a failure.
        let mut sim = Sim::new(config, seed, vec![Behaviour::serve(0, After::Drop)]);
        sim.connect();
        sim.run_until(secs(60), |s| s.session.state().is_terminal());
        let failure = failure_of(&sim);
        assert!(
            matches!(
                failure,
                Failure::TooManyFailures {
                    attempts: 5,
                    last: Disconnect::Abnormal { .. }
                }
            ),
            "{}: {failure:?}",
            sim.context()
        );
        assert_eq!(sim.opens().len(), 5, "{}", sim.context());
        assert!(sim.opens().iter().all(|(_, open)| open.attempt <= 5));
        // Terminal: nothing more happens, however long we wait.
        sim.run_for(secs(120));
        assert_eq!(sim.opens().len(), 5);
        // connect() starts again from attempt 1.
        sim.set_script(vec![Behaviour::serve_all()]);
        sim.connect();
        assert_eq!(sim.opens().last().map(|(_, open)| open.attempt), Some(1));
    }
}

#[test]
fn retry_budget_ends_a_long_run_of_failures() {
    let mut config = test_config();
    config.max_failures = None;
    config.max_retry_duration = Some(secs(10));
    let mut sim = Sim::new(config, 1, vec![Behaviour::Refuse]);
    sim.connect();
    sim.run_until(secs(60), |s| s.session.state().is_terminal());
    assert!(matches!(
        failure_of(&sim),
        Failure::RetryBudgetExhausted { .. }
    ));
    assert!(
        sim.now <= Timestamp::from_millis(10_000),
        "{}",
        sim.context()
    );
}

#[test]
fn healthy_connections_reset_the_failure_count() {
    for seed in SEEDS {
        let mut config = test_config();
        config.max_failures = Some(3);
        config.heartbeat = None;
        // Each connection lives 2 s (past the 1 s window) before dropping: never "failing".
        let slow_drop = Behaviour::serve(0, After::Drop);
        let mut sim = Sim::new(config, seed, vec![slow_drop]);
        sim.message_interval = secs(2);
        sim.connect();
        sim.run_for(secs(30));
        assert!(!sim.session.state().is_terminal(), "{}", sim.context());
        assert!(sim.opens().len() > 5, "{}", sim.context());
        assert!(
            sim.opens().iter().all(|(_, open)| open.attempt == 1),
            "{}",
            sim.context()
        );
    }
}

#[test]
fn first_retry_after_a_healthy_connection_is_quick() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![
                Behaviour::serve(10, After::Drop).lingering(secs(2)),
                Behaviour::serve_all(),
            ],
        );
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        // The drop came after the stability window: healthy, so the window is `initial`.
        let delay = sim.states().iter().find_map(|(_, state)| match state {
            State::Reconnecting {
                delay, attempt: 1, ..
            } => Some(*delay),
            _ => None,
        });
        assert!(
            delay.is_some_and(|d| d <= Duration::from_millis(100)),
            "{}",
            sim.context()
        );
    }
}

#[test]
fn close_1013_skips_the_quick_retry_and_1012_does_not() {
    let first_delay = |code: u16, seed: u64| {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![
                Behaviour::serve(3, After::Close(code)).lingering(secs(2)),
                Behaviour::serve_all(),
            ],
        );
        sim.connect();
        sim.run_until(secs(10), |s| {
            matches!(s.session.state(), State::Reconnecting { .. })
        });
        match sim.session.state() {
            State::Reconnecting { delay, .. } => *delay,
            _ => unreachable!(),
        }
    };
    let quick: Vec<Duration> = SEEDS.map(|seed| first_delay(1012, seed)).collect();
    let slow: Vec<Duration> = SEEDS.map(|seed| first_delay(1013, seed)).collect();
    assert!(
        quick.iter().all(|d| *d <= Duration::from_millis(100)),
        "{quick:?}"
    );
    assert!(
        slow.iter().all(|d| *d <= Duration::from_millis(200)),
        "{slow:?}"
    );
    assert!(
        slow.iter().any(|d| *d > Duration::from_millis(100)),
        "1013 draws from the doubled window: {slow:?}"
    );
}

#[test]
fn stalled_handshake_is_abandoned_at_the_connect_deadline() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![Behaviour::Stall, Behaviour::serve_all()],
        );
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        let (_, state) = sim
            .states()
            .into_iter()
            .find(|(_, state)| matches!(state, State::Reconnecting { .. }))
            .expect("a reconnect");
        let timed_out = sim.events.iter().find_map(|(at, event)| match event {
            Event::StateChanged {
                reason: Reason::Disconnected(Disconnect::ConnectTimeout),
                ..
            } => Some(*at),
            _ => None,
        });
        assert_eq!(
            timed_out,
            Some(Timestamp::from_millis(2_000)),
            "{}: {state:?}",
            sim.context()
        );
        // The stalled socket was released before the next one was opened.
        let first_conn = sim.opens()[0].1.conn;
        let abort_index = sim
            .commands
            .iter()
            .position(|(_, c)| *c == Command::Abort { conn: first_conn });
        let second_open = sim
            .commands
            .iter()
            .rposition(|(_, c)| matches!(c, Command::Open(_)));
        assert!(abort_index < second_open, "{}", sim.context());
    }
}

#[test]
fn half_open_connection_is_detected_within_interval_plus_timeout() {
    for seed in SEEDS {
        let config = test_config();
        let heartbeat = config.heartbeat.clone().unwrap();
        let bound = heartbeat.interval + heartbeat.timeout;
        let mut sim = Sim::new(
            config,
            seed,
            vec![
                Behaviour::serve(20, After::Blackhole),
                Behaviour::serve_all(),
            ],
        );
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        let last_inbound = sim
            .events
            .iter()
            .filter(|(_, event)| {
                matches!(
                    event,
                    Event::Message {
                        cursor: Some(Cursor(20)),
                        ..
                    }
                )
            })
            .map(|(at, _)| *at)
            .next()
            .expect("message 20 arrived");
        let detected = sim
            .events
            .iter()
            .find_map(|(at, event)| match event {
                Event::StateChanged {
                    reason: Reason::Disconnected(Disconnect::HeartbeatTimeout),
                    ..
                } => Some(*at),
                _ => None,
            })
            .expect("the dead connection was detected");
        assert!(
            detected - last_inbound <= bound,
            "{}: detected after {:?}",
            sim.context(),
            detected - last_inbound
        );
        assert_eq!(sim.session.stats().heartbeat_timeouts, 1);
        // The new connection resumed from the last delivered cursor.
        assert_eq!(sim.opens()[1].1.cursor, Some(Cursor(20)));
        assert_eq!(sim.opens()[1].1.url, "ws://feed.test/feed?cursor=20");
    }
}

#[test]
fn pings_keep_a_quiet_healthy_connection_open() {
    let mut sim = Sim::new(test_config(), 3, vec![Behaviour::serve(5, After::KeepOpen)]);
    sim.connect();
    sim.run_for(secs(60));
    assert!(sim.is_open(), "{}", sim.context());
    assert_eq!(sim.opens().len(), 1);
    let pings = sim
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, Command::Ping { .. }))
        .count();
    assert!(
        pings >= 50,
        "about one ping a second of silence, got {pings}"
    );
}

#[test]
fn idle_only_heartbeat_sends_nothing_and_still_detects_silence() {
    let mut config = test_config();
    config.heartbeat.as_mut().unwrap().probe = Probe::IdleOnly;
    let mut sim = Sim::new(
        config,
        4,
        vec![Behaviour::serve(5, After::KeepOpen), Behaviour::serve_all()],
    );
    sim.connect();
    sim.run_until(secs(10), |s| s.delivered().len() == 50);
    sim.assert_exactly_once(50);
    assert!(
        !sim.commands
            .iter()
            .any(|(_, c)| matches!(c, Command::Ping { .. }))
    );
    assert_eq!(sim.session.stats().heartbeat_timeouts, 1);
}

#[test]
fn application_message_heartbeat_for_browsers() {
    let mut config = test_config();
    config.heartbeat.as_mut().unwrap().probe =
        Probe::Message(Payload::Text("{\"type\":\"ping\"}".into()));
    let mut sim = Sim::new(
        config,
        5,
        vec![
            Behaviour::serve(5, After::Blackhole),
            Behaviour::serve(5, After::KeepOpen),
        ],
    );
    sim.connect();
    sim.run_until(secs(10), |s| s.opens().len() == 2);
    assert!(sim.commands.iter().any(|(_, c)| matches!(c, Command::Send { id: None, payload, .. } if payload.as_text() == Some("{\"type\":\"ping\"}"))));
}

#[test]
fn check_liveness_probes_at_once() {
    let mut sim = Sim::new(test_config(), 6, vec![Behaviour::serve(1, After::KeepOpen)]);
    sim.connect();
    sim.run_until(secs(1), Sim::is_open);
    let pings_before = sim
        .commands
        .iter()
        .filter(|(_, c)| matches!(c, Command::Ping { .. }))
        .count();
    sim.session.check_liveness(sim.now);
    assert!(matches!(
        sim.session.poll_command(),
        Some(Command::Ping { .. })
    ));
    assert_eq!(pings_before, 0);
}

#[test]
fn unauthorized_ends_without_retry() {
    for rejection in [
        Behaviour::Reject {
            status: 401,
            retry_after: None,
        },
        Behaviour::Reject {
            status: 403,
            retry_after: None,
        },
        Behaviour::serve(2, After::Close(4401)),
        Behaviour::serve(2, After::Close(1008)),
    ] {
        let mut sim = Sim::new(
            test_config(),
            7,
            vec![rejection.clone(), Behaviour::serve_all()],
        );
        sim.connect();
        sim.run_until(secs(10), |s| s.session.state().is_terminal());
        assert!(
            matches!(failure_of(&sim), Failure::Fatal(_)),
            "{rejection:?}"
        );
        sim.run_for(secs(60));
        assert_eq!(sim.opens().len(), 1, "{rejection:?} must not be retried");
    }
}

#[test]
fn retry_after_is_honoured() {
    for status in [429, 503] {
        let mut sim = Sim::new(
            test_config(),
            8,
            vec![
                Behaviour::Reject {
                    status,
                    retry_after: Some(secs(7)),
                },
                Behaviour::serve_all(),
            ],
        );
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        let opens = sim.opens();
        // The rejection arrives after one network latency; the retry waits 7 s plus a
        // jitter drawn from the backoff window, so a crowd told "7 s" spreads out.
        let waited = opens[1].0 - opens[0].0 - sim.latency;
        let window = sim.session.config().backoff.window(1);
        assert!(
            waited >= secs(7) && waited <= secs(7) + window,
            "{status}: {waited:?}"
        );
    }
}

#[test]
fn retry_after_is_capped_and_missing_header_takes_the_backoff() {
    let mut config = test_config();
    config.retry.max_retry_after = secs(2);
    let mut sim = Sim::new(
        config,
        9,
        vec![
            Behaviour::Reject {
                status: 503,
                retry_after: Some(secs(3600)),
            },
            Behaviour::Reject {
                status: 503,
                retry_after: None,
            },
            Behaviour::serve_all(),
        ],
    );
    sim.connect();
    sim.run_until(secs(30), |s| s.delivered().len() == 50);
    let opens = sim.opens();
    let waited = opens[1].0 - opens[0].0 - sim.latency;
    let window = sim.session.config().backoff.window(1);
    assert!(
        waited >= secs(2) && waited <= secs(2) + window,
        "{waited:?}"
    );
    assert!(opens[2].0 - opens[1].0 <= Duration::from_millis(400) + sim.latency);
}

#[test]
fn overlapping_replay_is_deduplicated() {
    for seed in SEEDS {
        let script = vec![
            Behaviour::serve_with_overlap(Some(20), After::Drop, 0),
            Behaviour::serve_with_overlap(Some(15), After::Drop, 8),
            Behaviour::serve_with_overlap(None, After::KeepOpen, 8),
        ];
        let mut sim = Sim::new(test_config(), seed, script);
        sim.connect();
        sim.run_until(secs(30), |s| s.delivered().len() == 50);
        sim.assert_exactly_once(50);
        assert_eq!(sim.session.stats().replays_dropped, 16, "{}", sim.context());
        assert_eq!(sim.session.last_cursor(), Some(Cursor(50)));
    }
}

#[test]
fn start_cursor_drops_what_was_delivered_before() {
    let mut config = test_config();
    config.start_cursor = Some(Cursor(10));
    config.resume = ResumeMode::None; // the server does not know where we were
    let mut sim = Sim::new(config, 10, vec![Behaviour::serve(15, After::KeepOpen)]);
    sim.connect();
    sim.run_until(secs(5), |s| s.delivered().len() == 5);
    assert_eq!(sim.delivered(), [11, 12, 13, 14, 15]);
    assert_eq!(sim.session.stats().replays_dropped, 10);
}

#[test]
fn cursor_gaps_are_reported_when_cursors_are_contiguous() {
    let mut config = test_config();
    config.contiguous_cursors = true;
    let mut sim = Sim::new(config, 10, vec![Behaviour::serve(3, After::KeepOpen)]);
    sim.connect();
    sim.run_until(secs(5), |s| s.delivered().len() == 3);
    // The server skips ahead: it could not resume from where the client was.
    let conn = sim.session.current_conn().unwrap();
    sim.inject(conn, SocketEvent::Message(sim::feed_message(9)));
    let gap = sim.events.iter().find_map(|(_, e)| match e {
        Event::CursorGap { last, received } => Some((*last, *received)),
        _ => None,
    });
    assert_eq!(gap, Some((Cursor(3), Cursor(9))));
    assert_eq!(sim.delivered(), [1, 2, 3, 9]);
}

#[test]
fn resume_by_header_and_by_first_message() {
    let mut config = test_config();
    config.resume = ResumeMode::Header("Last-Event-Id".into());
    let mut sim = Sim::new(
        config,
        11,
        vec![Behaviour::serve(10, After::Drop), Behaviour::serve_all()],
    );
    sim.connect();
    sim.run_until(secs(10), |s| s.delivered().len() == 50);
    let opens = sim.opens();
    assert_eq!(opens[0].1.resume_header, None);
    assert_eq!(
        opens[1].1.resume_header,
        Some(("Last-Event-Id".into(), "10".into()))
    );
    assert_eq!(opens[1].1.url, "ws://feed.test/feed");

    let mut config = test_config();
    config.resume = ResumeMode::FirstMessage(std::sync::Arc::new(|c| {
        Payload::from(format!("resume {c}"))
    }));
    let mut sim = Sim::new(
        config,
        11,
        vec![Behaviour::serve(10, After::Drop), Behaviour::serve_all()],
    );
    sim.connect();
    sim.run_until(secs(1), |s| s.delivered().len() == 10);
    sim.run_until(secs(1), |s| {
        matches!(s.session.state(), State::Reconnecting { .. })
    });
    sim.send("queued-1").unwrap();
    sim.send("queued-2").unwrap();
    sim.run_until(secs(10), |s| s.delivered().len() == 50);
    assert_eq!(
        sim.server_received_texts(),
        ["resume 10", "queued-1", "queued-2"]
    );
}

#[test]
fn offline_queue_is_delivered_in_order_after_reconnect() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![Behaviour::Refuse, Behaviour::Refuse, Behaviour::serve_all()],
        );
        for i in 0..5 {
            sim.send(&format!("early-{i}")).unwrap();
        }
        sim.connect();
        sim.run_until(secs(1), |s| {
            matches!(s.session.state(), State::Reconnecting { .. })
        });
        for i in 0..5 {
            sim.send(&format!("late-{i}")).unwrap();
        }
        assert!(sim.received.is_empty());
        sim.run_until(secs(10), Sim::is_open);
        let expected: Vec<String> = (0..5)
            .map(|i| format!("early-{i}"))
            .chain((0..5).map(|i| format!("late-{i}")))
            .collect();
        assert_eq!(sim.server_received_texts(), expected, "{}", sim.context());
        assert_eq!(sim.session.stats().queued, 0);
    }
}

#[test]
fn queue_overflow_returns_the_message() {
    let mut config = test_config();
    config.queue.max_messages = 3;
    config.queue.max_bytes = 100;
    let mut sim = Sim::new(config, 12, vec![Behaviour::Refuse]);
    sim.connect();
    for i in 0..3 {
        sim.send(&format!("m{i}")).unwrap();
    }
    let error = sim.send("overflow").unwrap_err();
    assert!(
        matches!(error, SendError::QueueFull { queued: 3, .. }),
        "{error:?}"
    );
    assert_eq!(error.into_payload(), Payload::from("overflow"));
    let too_big = "x".repeat(101);
    assert!(matches!(
        sim.send(&too_big),
        Err(SendError::TooLarge { max_bytes: 100, .. })
    ));
    assert_eq!(sim.session.stats().queued, 3);
}

#[test]
fn close_flushes_the_queue_then_closes() {
    let mut config = test_config();
    config.queue.max_messages = 100;
    let mut sim = Sim::new(config, 13, vec![Behaviour::serve(5, After::KeepOpen)]);
    sim.connect();
    sim.run_until(secs(1), Sim::is_open);
    for i in 0..10 {
        sim.session.send(format!("m{i}").into(), sim.now).unwrap();
    }
    sim.close();
    assert_eq!(sim.session.state(), &State::Closing);
    sim.run_until(secs(5), |s| s.session.state().is_terminal());
    assert_eq!(sim.session.state(), &State::Closed);
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(sim.server_received_texts(), expected);
    let last_two: Vec<&Command> = sim.commands.iter().rev().take(2).map(|(_, c)| c).collect();
    assert!(matches!(last_two[1], Command::Close { code: 1000, .. }));
    assert!(matches!(last_two[0], Command::Abort { .. }));
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::StateChanged {
            state: State::Closed,
            reason: Reason::CloseComplete
        }
    )));
    sim.run_for(secs(60));
    assert_eq!(sim.opens().len(), 1, "no Open after close()");
}

#[test]
fn close_while_disconnected_hands_the_queue_back() {
    let mut sim = Sim::new(test_config(), 14, vec![Behaviour::Refuse]);
    sim.connect();
    sim.run_until(secs(1), |s| {
        matches!(s.session.state(), State::Reconnecting { .. })
    });
    let id = sim.send("never sent").unwrap();
    sim.close();
    assert_eq!(sim.session.state(), &State::Closed);
    let unsent = sim.events.iter().find_map(|(_, e)| match e {
        Event::Unsent(unsent) => Some(unsent.clone()),
        _ => None,
    });
    let unsent = unsent.expect("the queue was handed back");
    assert_eq!(
        (unsent[0].id, unsent[0].payload.clone()),
        (id, Payload::from("never sent"))
    );
    assert!(matches!(
        sim.send("after close"),
        Err(SendError::NotRunning { .. })
    ));
}

#[test]
fn close_times_out_against_a_silent_server() {
    let mut sim = Sim::new(
        test_config(),
        15,
        vec![Behaviour::serve(1, After::Blackhole)],
    );
    sim.connect();
    sim.run_until(secs(1), |s| s.delivered().len() == 1);
    sim.run_for(Duration::from_millis(50)); // the server is now silent
    let closed_at = sim.now;
    sim.close();
    sim.run_until(secs(10), |s| s.session.state().is_terminal());
    let timed_out_at = sim.events.iter().find_map(|(at, e)| match e {
        Event::StateChanged {
            reason: Reason::CloseTimedOut,
            ..
        } => Some(*at),
        _ => None,
    });
    assert_eq!(
        timed_out_at,
        Some(closed_at + secs(5)),
        "the default close timeout"
    );
}

#[test]
fn close_during_handshake_with_queued_messages_waits_to_flush() {
    let mut sim = Sim::new(test_config(), 16, vec![Behaviour::serve_all()]);
    sim.send("hello").unwrap();
    sim.connect();
    sim.close(); // the handshake is still in flight
    assert_eq!(sim.session.state(), &State::Closing);
    sim.run_until(secs(5), |s| s.session.state().is_terminal());
    assert_eq!(sim.server_received_texts(), ["hello"]);
    assert_eq!(sim.opens().len(), 1);
}

#[test]
fn stale_events_from_an_abandoned_socket_are_inert() {
    for seed in SEEDS {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![Behaviour::serve(10, After::Drop), Behaviour::serve_all()],
        );
        sim.connect();
        sim.run_until(secs(10), |s| s.delivered().len() == 50);
        let old = sim.opens()[0].1.conn;
        let state = sim.session.state().clone();
        let stale_before = sim.session.stats().stale_inputs;
        let events_before = sim.events.len();
        let commands_before = sim.commands.len();
        for event in [
            SocketEvent::Message(sim::feed_message(51)),
            SocketEvent::Opened,
            SocketEvent::Pong,
            SocketEvent::Ended(Disconnect::Closed {
                code: 1006,
                reason: String::new(),
            }),
            SocketEvent::Ended(Disconnect::Rejected {
                status: 401,
                retry_after: None,
            }),
        ] {
            sim.inject(old, event);
        }
        assert_eq!(sim.session.state(), &state);
        assert_eq!(sim.events.len(), events_before);
        assert_eq!(sim.commands.len(), commands_before);
        assert_eq!(sim.session.stats().stale_inputs, stale_before + 5);
        sim.assert_exactly_once(50);
    }
}

#[test]
fn offline_ends_the_socket_at_once_and_online_retries_at_once() {
    let mut sim = Sim::new(
        test_config(),
        17,
        vec![
            Behaviour::serve(10, After::KeepOpen),
            Behaviour::serve_all(),
        ],
    );
    sim.connect();
    sim.run_until(secs(1), |s| s.delivered().len() == 10);
    let conn = sim.session.current_conn().unwrap();
    sim.set_online(false);
    assert_eq!(
        sim.commands.last().map(|(_, c)| c.clone()),
        Some(Command::Abort { conn })
    );
    assert!(matches!(
        sim.session.state(),
        State::Reconnecting { retry_at: None, .. }
    ));
    // Nothing happens while offline, however long.
    sim.run_for(secs(300));
    assert_eq!(sim.opens().len(), 1);
    let back_at = sim.now;
    sim.set_online(true);
    let (opened_at, open) = sim.opens().last().cloned().unwrap();
    assert_eq!(opened_at, back_at);
    assert_eq!(open.cursor, Some(Cursor(10)));
    sim.run_until(secs(5), |s| s.delivered().len() == 50);
    sim.assert_exactly_once(50);
}

#[test]
fn online_skips_the_remaining_backoff() {
    let mut config = test_config();
    config.backoff.initial = secs(10);
    config.backoff.max = secs(60);
    let mut sim = Sim::new(config, 18, vec![Behaviour::Refuse, Behaviour::serve_all()]);
    sim.connect();
    sim.run_until(secs(1), |s| {
        matches!(s.session.state(), State::Reconnecting { .. })
    });
    sim.set_online(false);
    sim.set_online(true);
    assert_eq!(sim.opens().len(), 2);
    assert_eq!(sim.opens()[1].0, sim.now);
}

#[test]
fn time_in_state_and_counters() {
    let mut sim = Sim::new(
        test_config(),
        19,
        vec![Behaviour::Refuse, Behaviour::serve(5, After::KeepOpen)],
    );
    sim.connect();
    sim.run_until(secs(5), |s| s.delivered().len() == 5);
    let opened_at = sim
        .states()
        .iter()
        .rev()
        .find(|(_, s)| *s == State::Open)
        .unwrap()
        .0;
    sim.run_for(Duration::from_millis(300));
    sim.session.handle_timeout(sim.now); // stats measure up to the latest time seen
    let stats = sim.session.stats();
    assert_eq!(stats.time_in_state, sim.now - opened_at);
    assert_eq!(
        (stats.attempts, stats.reconnects, stats.messages_delivered),
        (2, 0, 5)
    );
}

#[test]
fn poll_control_leaves_queued_messages_but_not_control_commands() {
    let mut session = resilient_ws_core::Session::new(test_config(), 20).unwrap();
    let t0 = Timestamp::ZERO;
    session.connect(t0);
    let Some(Command::Open(open)) = session.poll_control() else {
        panic!("control commands pass")
    };
    session.handle_socket(open.conn, SocketEvent::Opened, t0);
    session.send("queued".into(), t0).unwrap();
    session.check_liveness(t0);
    assert!(matches!(session.poll_control(), Some(Command::Ping { .. })));
    assert_eq!(session.poll_control(), None);
    assert_eq!(session.stats().queued, 1);
    session.close(1000, "", t0).unwrap();
    assert_eq!(
        session.poll_control(),
        None,
        "the close waits behind the queue"
    );
    assert!(matches!(
        session.poll_command(),
        Some(Command::Send { id: Some(_), .. })
    ));
    assert!(matches!(
        session.poll_control(),
        Some(Command::Close { .. })
    ));
}

#[test]
fn retry_after_zero_never_loops_tightly() {
    for seed in SEEDS {
        let mut config = test_config();
        config.max_failures = None;
        let mut sim = Sim::new(
            config,
            seed,
            vec![Behaviour::Reject {
                status: 503,
                retry_after: Some(Duration::ZERO),
            }],
        );
        sim.connect();
        sim.run_for(secs(10));
        let opens = sim.opens();
        let floor = sim.session.config().backoff.floor();
        for pair in opens.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= floor, "{}", sim.context());
        }
        assert!(opens.len() < 110, "{} attempts in 10 s", opens.len());
    }
}

#[test]
fn a_crowd_told_the_same_retry_after_spreads_over_the_backoff_window() {
    let retry_at = |seed: u64| {
        let mut sim = Sim::new(
            test_config(),
            seed,
            vec![
                Behaviour::Reject {
                    status: 503,
                    retry_after: Some(secs(2)),
                },
                Behaviour::serve_all(),
            ],
        );
        sim.connect();
        sim.run_until(secs(10), |s| s.opens().len() == 2);
        sim.opens()[1].0
    };
    let times: Vec<Timestamp> = (0..30).map(retry_at).collect();
    let (first, last) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    let window = test_config().backoff.window(1);
    assert!(
        *last - *first >= window / 2,
        "30 clients returned within {:?}",
        *last - *first
    );
}

/// A server that accepts, sends one new message and closes: the messages are progress,
/// so the session goes on, but never faster than a growing backoff.
#[test]
fn flapping_with_new_data_backs_off_and_goes_on() {
    for seed in SEEDS {
        let mut config = test_config();
        config.max_failures = Some(3);
        let mut sim = Sim::new(config, seed, vec![Behaviour::serve(1, After::Close(1011))]);
        sim.connect();
        sim.run_until(secs(60), |s| s.delivered().len() == 12);
        assert_eq!(
            sim.delivered(),
            (1..=12).collect::<Vec<u64>>(),
            "{}",
            sim.context()
        );
        let attempts: Vec<u32> = sim
            .states()
            .iter()
            .filter_map(|(_, state)| match state {
                State::Reconnecting { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(attempts[..5], [2, 3, 4, 5, 6], "{}", sim.context());
        assert!(
            !matches!(sim.session.state(), State::Failed(_)),
            "{}",
            sim.context()
        );
    }
}

/// The same server, but its one message is a replay the client drops: no progress, so
/// the failure cap ends the session.
#[test]
fn flapping_with_only_replays_ends_at_the_failure_cap() {
    for seed in SEEDS {
        let mut config = test_config();
        config.max_failures = Some(3);
        let script = vec![
            Behaviour::serve(5, After::Close(1011)).lingering(secs(2)),
            Behaviour::serve_with_overlap(Some(1), After::Close(1011), 1),
        ];
        let mut sim = Sim::new(config, seed, script);
        sim.connect();
        sim.run_for(secs(60));
        assert!(
            matches!(
                sim.session.state(),
                State::Failed(Failure::TooManyFailures { attempts: 3, .. })
            ),
            "{}",
            sim.context()
        );
        assert_eq!(sim.delivered(), (1..=5).collect::<Vec<u64>>());
        assert_eq!(sim.opens().len(), 4, "{}", sim.context());
    }
}
