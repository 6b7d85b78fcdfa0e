//! Epochs: the server's welcome is read, not delivered, and a stream that does not
//! continue the resumed one is reported as a discontinuity, after which cursors are new.

use std::time::Duration;

use resilient_ws_core::{
    Command, Config, ConnId, Cursor, Event, Payload, ResumeMode, Session, SocketEvent, Timestamp,
    json_cursor, json_welcome,
};

fn config() -> Config {
    let mut config = Config::new("ws://feed.test/feed");
    config.cursor = Some(json_cursor("seq"));
    config.resume = ResumeMode::QueryParam("cursor".into());
    config.welcome = Some(json_welcome());
    config.heartbeat = None;
    config
}

fn welcome(epoch: &str, resumed: bool, reason: &str) -> Payload {
    Payload::from(format!(
        r#"{{"type":"welcome","epoch":"{epoch}","resumed":{resumed},"reason":"{reason}","from":1,"head":9}}"#
    ))
}

fn seq(n: u64) -> Payload {
    Payload::from(format!(r#"{{"seq":{n}}}"#))
}

/// Drives one session by hand: each connection is opened, fed, and dropped.
struct Driven {
    session: Session,
    now: Timestamp,
    conn: Option<ConnId>,
    urls: Vec<String>,
}

impl Driven {
    fn new(config: Config) -> Self {
        let mut session = Session::new(config, 7).unwrap();
        session.connect(Timestamp::ZERO);
        Self {
            session,
            now: Timestamp::ZERO,
            conn: None,
            urls: Vec::new(),
        }
    }

    /// Waits for the next open, opens it, and feeds `messages`.
    fn connection(&mut self, messages: Vec<Payload>) -> Vec<Event> {
        for _ in 0..100 {
            while let Some(command) = self.session.poll_command() {
                if let Command::Open(open) = command {
                    self.urls.push(open.url);
                    self.conn = Some(open.conn);
                }
            }
            if self.conn.is_some() {
                break;
            }
            let (at, _) = self.session.poll_timeout().expect("a retry is due");
            self.now = at;
            self.session.handle_timeout(at);
        }
        let conn = self.conn.take().expect("the session opened a socket");
        self.session
            .handle_socket(conn, SocketEvent::Opened, self.now);
        for message in messages {
            self.session
                .handle_socket(conn, SocketEvent::Message(message), self.now);
        }
        let events = std::iter::from_fn(|| self.session.poll_event()).collect();
        self.now = self.now + Duration::from_millis(10);
        self.session.handle_socket(
            conn,
            SocketEvent::Ended(resilient_ws_core::Disconnect::Closed {
                code: 1012,
                reason: String::new(),
            }),
            self.now,
        );
        events
    }
}

fn delivered(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message { cursor, .. } => Some(cursor.map_or(0, |c| c.0)),
            _ => None,
        })
        .collect()
}

fn discontinuities(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|event| matches!(event, Event::Discontinuity { .. }))
        .collect()
}

#[test]
fn a_resumed_stream_goes_on_and_the_welcome_is_not_delivered() {
    let mut driven = Driven::new(config());
    let first = driven.connection(vec![welcome("e1", false, "fresh"), seq(1), seq(2)]);
    assert_eq!(
        delivered(&first),
        [1, 2],
        "the welcome is read, not delivered"
    );
    let second = driven.connection(vec![welcome("e1", true, "resumed"), seq(2), seq(3)]);
    assert_eq!(delivered(&second), [3], "2 is a replay within the epoch");
    assert!(discontinuities(&second).is_empty());
    assert_eq!(driven.urls[0], "ws://feed.test/feed");
    assert_eq!(driven.urls[1], "ws://feed.test/feed?cursor=2&epoch=e1");
}

#[test]
fn a_new_epoch_is_a_discontinuity_and_its_cursors_are_new() {
    let mut driven = Driven::new(config());
    driven.connection(vec![welcome("e1", false, "fresh"), seq(1), seq(2), seq(3)]);
    let after = driven.connection(vec![welcome("e2", false, "epoch_changed"), seq(1), seq(2)]);
    assert_eq!(
        discontinuities(&after),
        [&Event::Discontinuity {
            previous_epoch: Some("e1".into()),
            epoch: "e2".into(),
            reason: "epoch_changed".into(),
            last_cursor: Some(Cursor(3)),
        }]
    );
    let position = |wanted: fn(&Event) -> bool| after.iter().position(wanted);
    assert!(
        position(|e| matches!(e, Event::Discontinuity { .. }))
            < position(|e| matches!(e, Event::Message { .. })),
        "reported before the new epoch's messages: {after:?}"
    );
    assert_eq!(
        delivered(&after),
        [1, 2],
        "not dropped as replays of the old epoch"
    );
    driven.connection(vec![welcome("e2", true, "resumed")]);
    assert_eq!(driven.urls[2], "ws://feed.test/feed?cursor=2&epoch=e2");
}

#[test]
fn a_cursor_the_server_cannot_resume_is_a_discontinuity_in_the_same_epoch() {
    let mut driven = Driven::new(config());
    driven.connection(vec![welcome("e1", false, "fresh"), seq(1)]);
    let after = driven.connection(vec![welcome("e1", false, "cursor_too_old"), seq(5)]);
    assert_eq!(
        discontinuities(&after),
        [&Event::Discontinuity {
            previous_epoch: Some("e1".into()),
            epoch: "e1".into(),
            reason: "cursor_too_old".into(),
            last_cursor: Some(Cursor(1)),
        }]
    );
    assert_eq!(delivered(&after), [5]);
}

#[test]
fn only_the_first_message_of_a_connection_can_be_a_welcome() {
    let mut driven = Driven::new(config());
    let events = driven.connection(vec![seq(1), welcome("e1", true, "resumed")]);
    assert_eq!(
        delivered(&events),
        [1, 0],
        "a later welcome-shaped message is data"
    );
    let mut without = config();
    without.welcome = None;
    let mut driven = Driven::new(without);
    let events = driven.connection(vec![welcome("e1", false, "fresh")]);
    assert_eq!(delivered(&events), [0], "no reader: delivered as sent");
}

#[test]
fn the_hub_welcome_is_read_and_other_json_is_not() {
    let read = json_welcome();
    let hub = Payload::from(
        r#"{"type":"welcome","epoch":"18c2f-9a1","resumed":false,"reason":"cursor_too_old","from":1,"head":5}"#,
    );
    let welcome = read(&hub).expect("the hub's welcome");
    assert_eq!(
        (
            welcome.epoch.as_str(),
            welcome.resumed,
            welcome.reason.as_str()
        ),
        ("18c2f-9a1", false, "cursor_too_old")
    );
    for other in [
        r#"{"type":"update","epoch":"e","resumed":true,"reason":"r"}"#,
        r#"{"type":"welcome","epoch":"e","reason":"r"}"#,
        r#"{"type":"welcome","epoch":1,"resumed":true,"reason":"r"}"#,
        r#"{"seq":1}"#,
        "welcome",
    ] {
        assert_eq!(read(&Payload::from(other)), None, "{other}");
    }
}
