//! What drivers report beyond socket events: messages written to the OS socket (and those
//! a socket never wrote), and inbound data held back because the application is not
//! taking events. Driven by hand with a fake clock.

use std::time::Duration;

use resilient_ws_core::{
    Command, Config, ConnId, Disconnect, Event, HeartbeatConfig, Payload, Probe, Session,
    SocketEvent, State, Timestamp, Unsent,
};

fn ms(millis: u64) -> Timestamp {
    Timestamp::from_millis(millis)
}

fn config() -> Config {
    let mut config = Config::new("ws://feed.test/ws");
    config.confirm_writes = true;
    config.queue.max_messages = 4;
    config.heartbeat = Some(HeartbeatConfig {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(50),
        probe: Probe::PingFrame,
    });
    config
}

/// Drains the commands; returns the application's sends and the last Open's socket.
fn drain(session: &mut Session) -> (Vec<Unsent>, Option<ConnId>) {
    let (mut sends, mut opened) = (Vec::new(), None);
    while let Some(command) = session.poll_command() {
        match command {
            Command::Send {
                payload,
                id: Some(id),
                ..
            } => sends.push(Unsent { id, payload }),
            Command::Open(open) => opened = Some(open.conn),
            _ => {}
        }
    }
    (sends, opened)
}

fn open_session(config: Config) -> (Session, ConnId) {
    let mut session = Session::new(config, 1).expect("valid config");
    session.connect(ms(0));
    let (_, conn) = drain(&mut session);
    let conn = conn.expect("an Open");
    session.handle_socket(conn, SocketEvent::Opened, ms(0));
    (session, conn)
}

#[test]
fn unwritten_messages_leave_again_on_the_next_connection_in_order() {
    let (mut session, first) = open_session(config());
    for text in ["a", "b", "c"] {
        session.send(text.into(), ms(1)).unwrap();
    }
    let (sends, _) = drain(&mut session);
    assert_eq!(sends.len(), 3);
    session.handle_socket(
        first,
        SocketEvent::Written {
            messages: 1,
            bytes: 1,
        },
        ms(2),
    );
    assert_eq!(
        session.stats().messages_sent,
        1,
        "counts only what was written"
    );

    // A reset: "b" and "c" never reached the OS socket.
    let reset = Disconnect::Abnormal {
        detail: "reset".into(),
    };
    session.handle_socket(first, SocketEvent::Ended(reset), ms(3));
    session.send("d".into(), ms(3)).unwrap();
    session.return_unwritten(first, sends[1..].to_vec());

    assert!(
        drain(&mut session).0.is_empty(),
        "nothing leaves while reconnecting"
    );
    let retry_at = match session.state() {
        State::Reconnecting { retry_at, .. } => retry_at.expect("online"),
        other => panic!("{other:?}"),
    };
    session.handle_timeout(retry_at);
    let next = drain(&mut session).1.expect("an Open");
    session.handle_socket(next, SocketEvent::Opened, retry_at);
    let (sends, _) = drain(&mut session);
    let texts: Vec<Payload> = sends.into_iter().map(|sent| sent.payload).collect();
    assert_eq!(texts, ["b".into(), "c".into(), "d".into()] as [Payload; 3]);
    session.handle_socket(
        next,
        SocketEvent::Written {
            messages: 3,
            bytes: 3,
        },
        retry_at,
    );
    assert_eq!(session.stats().messages_sent, 4);
}

#[test]
fn messages_in_flight_count_against_the_queue_bounds() {
    let (mut session, conn) = open_session(config());
    for _ in 0..4 {
        session.send("m".into(), ms(1)).unwrap();
    }
    assert_eq!(drain(&mut session).0.len(), 4);
    assert!(
        session.send("m".into(), ms(1)).is_err(),
        "4 unwritten fill it"
    );
    session.handle_socket(
        conn,
        SocketEvent::Written {
            messages: 2,
            bytes: 2,
        },
        ms(2),
    );
    session.send("m".into(), ms(2)).unwrap();
}

#[test]
fn unwritten_messages_come_back_as_unsent_once_the_session_stopped() {
    let (mut session, conn) = open_session(config());
    session.send("a".into(), ms(1)).unwrap();
    let (sends, _) = drain(&mut session);
    let fatal = Disconnect::Closed {
        code: 1008,
        reason: String::new(),
    };
    session.handle_socket(conn, SocketEvent::Ended(fatal), ms(2));
    assert!(matches!(session.state(), State::Failed(_)));
    session.return_unwritten(conn, sends);
    let handed_back: Vec<Unsent> = std::iter::from_fn(|| session.poll_event())
        .filter_map(|event| match event {
            Event::Unsent(messages) => Some(messages),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(handed_back.len(), 1);
    assert_eq!(handed_back[0].payload, Payload::from("a"));
}

#[test]
fn held_back_data_keeps_the_connection_alive_until_the_application_takes_it() {
    let (mut session, conn) = open_session(config());
    session.handle_socket(conn, SocketEvent::Backlog(true), ms(10));
    // Far past interval + timeout: no probe, no verdict, while data waits.
    for at in (100..2_000).step_by(50) {
        session.handle_timeout(ms(at));
        assert_eq!(session.state(), &State::Open, "at {at} ms");
        while let Some(command) = session.poll_command() {
            assert!(
                !matches!(command, Command::Ping { .. }),
                "no probe at {at} ms"
            );
        }
    }
    // The application took it: silence from now on is judged as usual.
    session.handle_socket(conn, SocketEvent::Backlog(false), ms(2_000));
    session.handle_timeout(ms(2_100));
    assert!(matches!(session.poll_command(), Some(Command::Ping { .. })));
    session.handle_timeout(ms(2_150));
    assert!(matches!(session.state(), State::Reconnecting { .. }));
}

#[test]
fn without_data_waiting_a_dead_connection_is_found_in_time() {
    let (mut session, _conn) = open_session(config());
    session.handle_timeout(ms(100));
    session.handle_timeout(ms(150));
    assert!(matches!(session.state(), State::Reconnecting { .. }));
}

#[test]
fn drain_events_keeps_the_order_whether_it_swaps_or_appends() {
    let (mut session, conn) = open_session(config());
    let mut into = std::collections::VecDeque::new();
    session.drain_events(&mut into);
    assert!(
        matches!(
            into.back(),
            Some(Event::StateChanged {
                state: State::Open,
                ..
            })
        ),
        "the open's state change: {into:?}"
    );
    // Into a non-empty queue: appended behind what it holds.
    for text in ["1", "2"] {
        session.handle_socket(conn, SocketEvent::Message(Payload::from(text)), ms(5));
    }
    session.drain_events(&mut into);
    // Into an empty one: swapped in whole.
    let mut later = std::collections::VecDeque::new();
    session.handle_socket(conn, SocketEvent::Message(Payload::from("3")), ms(6));
    session.drain_events(&mut later);
    let texts: Vec<String> = into
        .iter()
        .chain(&later)
        .filter_map(|event| match event {
            Event::Message { payload, .. } => payload.as_text().map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["1", "2", "3"]);
    assert!(session.poll_event().is_none(), "nothing is left behind");
}

/// Messages read at one time move the heartbeat's deadline once; an answer that comes at
/// the very time of its probe still moves it (the probe's deadline goes).
#[test]
fn inbound_at_one_time_sets_the_heartbeat_deadline_from_that_time() {
    let (mut session, conn) = open_session(config());
    for _ in 0..3 {
        session.handle_socket(conn, SocketEvent::Message(Payload::from("m")), ms(10));
    }
    assert_eq!(session.poll_timeout().map(|(at, _)| at), Some(ms(110)));
    session.check_liveness(ms(10));
    assert!(
        std::iter::from_fn(|| session.poll_command())
            .any(|command| matches!(command, Command::Ping { .. })),
        "the probe goes out at 10"
    );
    assert_eq!(
        session.poll_timeout().map(|(at, _)| at),
        Some(ms(60)),
        "the probe's deadline"
    );
    session.handle_socket(conn, SocketEvent::Pong, ms(10));
    assert_eq!(
        session.poll_timeout().map(|(at, _)| at),
        Some(ms(110)),
        "the answer at 10 replaces the probe's deadline with 10 + interval"
    );
}
