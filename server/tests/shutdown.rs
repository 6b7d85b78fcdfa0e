//! Shutdown closes every connection with 1012 and refuses new ones.

mod support;

use resilient_ws_server::{CLOSE_SHUTDOWN, Hub, HubConfig, HubError};
use support::{Server, close_frame, welcome, within};
use tokio_tungstenite::tungstenite::Error as WsError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_1012_to_every_client_and_refuses_new_ones() {
    let hub = Hub::new(HubConfig::default());
    let server = Server::start(&hub).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = server.connect("").await;
        welcome(&mut ws).await;
        clients.push(tokio::spawn(async move { close_frame(&mut ws).await }));
    }
    hub.publish(&"before").expect("publishes");
    support::wait_for_stats(&hub, |s| s.connections == 3 && s.subscribers == 3).await;

    within(hub.shutdown()).await;
    for client in clients {
        let frame = within(client).await.expect("reads").expect("a close frame");
        assert_eq!(u16::from(frame.code), CLOSE_SHUTDOWN);
    }
    let stats = hub.stats();
    assert_eq!(
        (stats.connections, stats.subscribers),
        (0, 0),
        "shutdown waits for every close"
    );

    let refused = within(tokio_tungstenite::connect_async(server.url("")))
        .await
        .expect_err("refused after shutdown");
    let WsError::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused}");
    };
    assert_eq!(response.status(), 503);
    assert!(matches!(hub.publish(&"after"), Err(HubError::ShutDown)));
}
