//! The native client against the scriptable server: the basics end to end.

use std::time::Duration;

use resilient_ws::{Client, Event, State};
use resilient_ws_tests::{Behaviour, Recorder, Script, ScriptServer, Step};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn resumes_after_a_drop_with_exactly_once_delivery() {
    let script = Script::new(Behaviour::Accept {
        then: vec![Step::SendFeed { from: 1, count: 20 }, Step::DropTcp],
    })
    .then(Behaviour::Accept {
        then: vec![
            Step::SendFeed {
                from: 15,
                count: 26,
            },
            Step::EchoUntilClosed,
        ],
    });
    let server = ScriptServer::start(script).await.unwrap();
    let (client, events) = Client::builder(server.url("/feed"))
        .cursor_field("seq")
        .resume_query("cursor")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(40, LIMIT).await;
    recorder.assert_exactly_once(40);
    let requests = server.requests();
    assert_eq!(requests[1].query_param("cursor"), Some("20"));
    assert_eq!(client.stats().replays_dropped, 6);
    assert_eq!(server.max_live_connections(), 1);
    client.send_text("hello").unwrap();
    client.close(1000, "done").await.unwrap();
    assert_eq!(client.state(), State::Closed);
    assert!(recorder.events().iter().any(|(_, e)| matches!(
        e,
        Event::StateChanged {
            state: State::Closed,
            ..
        }
    )));
    server.shutdown().await;
}
