//! Self-tests of the scriptable server: each behaviour and step, driven by a real
//! tokio-tungstenite client.

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use resilient_ws_tests::script_server::feed_message;
use resilient_ws_tests::script_server::raw_frame::{self, FIN, OPCODE_TEXT};
use resilient_ws_tests::wait;
use resilient_ws_tests::{Behaviour, ClientMessage, Script, ScriptServer, ScriptServerError, Step};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Error, Message};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async, connect_async_with_config,
};

/// Upper bound for any single test.
const TEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long the client waits for one message.
const MESSAGE_WAIT: Duration = Duration::from_secs(2);

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs a test body under the deadline.
async fn within<F: Future<Output = ()>>(body: F) {
    wait::within(TEST_DEADLINE, body).await;
}

/// Polls `condition` for up to 2 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    wait::eventually(what, Duration::from_secs(2), condition).await;
}

async fn connect(server: &ScriptServer) -> Client {
    let (client, _) = connect_async(server.url("/"))
        .await
        .expect("upgrade failed");
    client
}

/// The next item from the client stream, failing the test after `MESSAGE_WAIT`.
async fn next(client: &mut Client) -> Option<Result<Message, Error>> {
    timeout(MESSAGE_WAIT, client.next())
        .await
        .expect("no message in time")
}

async fn next_message(client: &mut Client) -> Message {
    next(client)
        .await
        .expect("stream ended")
        .expect("stream failed")
}

fn text(message: &Message) -> &str {
    message.to_text().expect("not a text message")
}

#[tokio::test]
async fn rejects_with_the_scripted_status_and_retry_after() {
    within(async {
        let script = Script::new(Behaviour::Reject {
            status: 503,
            retry_after: Some(7),
        })
        .then(Behaviour::Reject {
            status: 404,
            retry_after: None,
        });
        let server = ScriptServer::start(script).await.unwrap();
        let expected = [(503, Some("7")), (404, None), (404, None)];
        for (status, retry_after) in expected {
            let Err(Error::Http(response)) = connect_async(server.url("/feed")).await else {
                panic!("the upgrade should have been rejected");
            };
            assert_eq!(response.status().as_u16(), status);
            let header = response.headers().get("retry-after");
            assert_eq!(header.map(|value| value.to_str().unwrap()), retry_after);
        }
        assert_eq!(server.connections(), 3);
        assert_eq!(server.accepted(), 0);
        assert_eq!(server.requests().len(), 3);
        eventually("rejected sockets closed", || server.live_connections() == 0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_rejection_must_be_an_error_status() {
    for status in [101, 200, 42, 1000] {
        let script = Script::new(Behaviour::Reject {
            status,
            retry_after: None,
        });
        let error = ScriptServer::start(script).await.unwrap_err();
        assert!(matches!(error, ScriptServerError::InvalidRejectStatus(s) if s == status));
    }
}

#[tokio::test]
async fn sends_in_order_then_closes_with_the_scripted_code() {
    within(async {
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![
                Step::SendText("hello".to_owned()),
                Step::SendBinary(vec![1, 2, 3]),
                Step::SendFeed { from: 5, count: 3 },
                Step::Close {
                    code: 4001,
                    reason: "bye".to_owned(),
                },
            ],
        }))
        .await
        .unwrap();
        let mut client = connect(&server).await;
        assert_eq!(text(&next_message(&mut client).await), "hello");
        assert_eq!(
            next_message(&mut client).await,
            Message::binary(vec![1, 2, 3])
        );
        for seq in 5..8 {
            assert_eq!(text(&next_message(&mut client).await), feed_message(seq));
        }
        assert_eq!(feed_message(5), r#"{"seq":5,"data":"x"}"#);
        let Message::Close(Some(frame)) = next_message(&mut client).await else {
            panic!("expected a close frame");
        };
        assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (4001, "bye")
        );
        assert!(
            next(&mut client).await.is_none(),
            "closed after the handshake"
        );

        // The client's answering close was read and recorded.
        eventually("close answer recorded", || {
            server.received()[0].iter().any(|message| {
                matches!(
                    message,
                    ClientMessage::Close {
                        code: Some(4001),
                        ..
                    }
                )
            })
        })
        .await;
        eventually("socket closed", || server.live_connections() == 0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn drop_tcp_ends_without_a_close_frame() {
    within(async {
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::SendText("last".to_owned()), Step::DropTcp],
        }))
        .await
        .unwrap();
        let mut client = connect(&server).await;
        assert_eq!(text(&next_message(&mut client).await), "last");
        let ending = next(&mut client).await;
        assert!(
            matches!(
                ending,
                Some(Err(Error::Protocol(
                    ProtocolError::ResetWithoutClosingHandshake
                )))
            ),
            "got {ending:?}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn raw_bytes_reach_the_client_as_written() {
    within(async {
        let server = ScriptServer::start(
            Script::new(Behaviour::Accept {
                then: vec![
                    Step::SendRaw(raw_frame::frame(FIN | OPCODE_TEXT, b"raw")),
                    Step::SendRaw(raw_frame::invalid_utf8_text()),
                ],
            })
            .then(Behaviour::Accept {
                then: vec![Step::SendRaw(raw_frame::reserved_bits_text())],
            }),
        )
        .await
        .unwrap();

        let mut client = connect(&server).await;
        assert_eq!(text(&next_message(&mut client).await), "raw");
        let invalid = next(&mut client).await;
        assert!(
            matches!(invalid, Some(Err(Error::Utf8(_)))),
            "got {invalid:?}"
        );

        let mut client = connect(&server).await;
        let reserved = next(&mut client).await;
        assert!(
            matches!(
                reserved,
                Some(Err(Error::Protocol(ProtocolError::NonZeroReservedBits)))
            ),
            "got {reserved:?}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_frame_arrives_whole_or_trips_the_client_limit() {
    within(async {
        let len = 200_000;
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::SendOversized { len }],
        }))
        .await
        .unwrap();

        let mut roomy = connect(&server).await;
        let message = next_message(&mut roomy).await;
        assert_eq!(text(&message).len(), len);
        assert!(text(&message).bytes().all(|byte| byte == b'x'));

        let small = WebSocketConfig::default().max_message_size(Some(len / 2));
        let (mut strict, _) = connect_async_with_config(server.url("/"), Some(small), false)
            .await
            .unwrap();
        let tripped = next(&mut strict).await;
        assert!(
            matches!(
                tripped,
                Some(Err(Error::Capacity(CapacityError::MessageTooLong { .. })))
            ),
            "got {tripped:?}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn wait_delays_the_next_step_while_answering_pings() {
    within(async {
        let pause = Duration::from_millis(300);
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::Wait(pause), Step::SendText("after".to_owned())],
        }))
        .await
        .unwrap();
        let connected = Instant::now();
        let mut client = connect(&server).await;
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        assert_eq!(
            next_message(&mut client).await,
            Message::Pong(Bytes::from_static(b"p"))
        );
        assert!(connected.elapsed() < pause, "the pong waited for the pause");
        assert_eq!(text(&next_message(&mut client).await), "after");
        assert!(connected.elapsed() >= pause);
        assert_eq!(
            server.received()[0],
            vec![ClientMessage::Ping(b"p".to_vec())]
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn go_silent_keeps_the_socket_open_without_answers_until_shutdown() {
    within(async {
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::SendText("last".to_owned()), Step::GoSilent],
        }))
        .await
        .unwrap();
        let mut client = connect(&server).await;
        assert_eq!(text(&next_message(&mut client).await), "last");
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        let silence = timeout(Duration::from_millis(300), client.next()).await;
        assert!(silence.is_err(), "expected silence, got {silence:?}");
        assert_eq!(server.live_connections(), 1);

        server.shutdown().await;
        let ending = next(&mut client).await;
        assert!(!matches!(ending, Some(Ok(_))), "got {ending:?}");
    })
    .await;
}

#[tokio::test]
async fn echo_until_closed_echoes_answers_pings_and_records() {
    within(async {
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::EchoUntilClosed],
        }))
        .await
        .unwrap();
        let mut client = connect(&server).await;
        client.send(Message::text("a")).await.unwrap();
        client.send(Message::binary(vec![9])).await.unwrap();
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        assert_eq!(text(&next_message(&mut client).await), "a");
        assert_eq!(next_message(&mut client).await, Message::binary(vec![9]));
        assert_eq!(
            next_message(&mut client).await,
            Message::Pong(Bytes::from_static(b"p"))
        );

        client.close(None).await.unwrap();
        assert!(matches!(next_message(&mut client).await, Message::Close(_)));
        assert!(next(&mut client).await.is_none());
        eventually("connection finished", || server.live_connections() == 0).await;
        assert_eq!(
            server.received()[0],
            vec![
                ClientMessage::Text("a".to_owned()),
                ClientMessage::Binary(vec![9]),
                ClientMessage::Ping(b"p".to_vec()),
                ClientMessage::Close {
                    code: None,
                    reason: String::new()
                },
            ]
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn after_the_last_step_the_server_keeps_listening() {
    within(async {
        let server = ScriptServer::start(Script::new(Behaviour::Accept {
            then: vec![Step::SendText("hi".to_owned())],
        }))
        .await
        .unwrap();
        let mut client = connect(&server).await;
        assert_eq!(text(&next_message(&mut client).await), "hi");
        client.send(Message::text("cursor=3")).await.unwrap();
        client
            .send(Message::Ping(Bytes::from_static(b"alive?")))
            .await
            .unwrap();
        assert_eq!(
            next_message(&mut client).await,
            Message::Pong(Bytes::from_static(b"alive?"))
        );
        assert_eq!(
            server.received()[0][0],
            ClientMessage::Text("cursor=3".to_owned())
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn behaviours_follow_the_script_and_requests_are_recorded() {
    within(async {
        let script = Script::new(Behaviour::Reject {
            status: 503,
            retry_after: None,
        })
        .then(Behaviour::Accept {
            then: vec![Step::SendText("second".to_owned())],
        })
        .then(Behaviour::Accept {
            then: vec![Step::SendText("later".to_owned())],
        });
        let server = ScriptServer::start(script).await.unwrap();
        let mut greetings = Vec::new();
        let mut clients = Vec::new();
        for attempt in 0..4 {
            let mut request = server
                .url(&format!("feed?after={attempt}"))
                .into_client_request()
                .unwrap();
            request
                .headers_mut()
                .insert("x-attempt", HeaderValue::from(attempt));
            match connect_async(request).await {
                Ok((mut client, _)) => {
                    greetings.push(text(&next_message(&mut client).await).to_owned());
                    clients.push(client);
                }
                Err(Error::Http(response)) => greetings.push(response.status().to_string()),
                Err(error) => panic!("unexpected {error}"),
            }
        }
        assert_eq!(
            greetings,
            ["503 Service Unavailable", "second", "later", "later"]
        );
        assert_eq!((server.connections(), server.accepted()), (4, 3));

        let requests = server.requests();
        assert_eq!(requests.len(), 4);
        for (attempt, request) in requests.iter().enumerate() {
            assert_eq!(request.path, format!("/feed?after={attempt}"));
            let expected = attempt.to_string();
            assert_eq!(request.query_param("after"), Some(expected.as_str()));
            assert_eq!(request.header("X-Attempt"), Some(expected.as_str()));
        }

        // Three upgraded clients are still connected.
        eventually("rejected socket closed", || server.live_connections() == 3).await;
        assert!(server.max_live_connections() >= 3);
        assert_eq!(server.received().len(), 3);
        drop(clients);
        eventually("all closed", || server.live_connections() == 0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn url_points_at_the_server() {
    let server = ScriptServer::start(Script::new(Behaviour::Accept { then: Vec::new() }))
        .await
        .unwrap();
    let expected = format!("ws://{}/feed", server.addr());
    assert_eq!(server.url("/feed"), expected);
    assert_eq!(server.url("feed"), expected);
    server.shutdown().await;
}
