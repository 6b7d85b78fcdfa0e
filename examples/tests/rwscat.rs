//! rwscat as a user runs it: a real process against the feed server on 127.0.0.1.

use std::process::Stdio;
use std::time::Duration;

use resilient_ws_examples::feed_server::{
    ClientPayload, CloseAfter, Faults, FeedConfig, FeedServer, FeedServerHandle, Refusal,
};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(20);

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs rwscat with `args`, feeding `stdin`, and waits (bounded) for it to exit.
async fn rwscat(args: &[&str], stdin: &str) -> Finished {
    let (child, mut input) = spawn_rwscat(args);
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("stdin accepts the lines");
    // Keep stdin open: end of input must not end the session unless asked to.
    let finished = wait(child).await;
    drop(input);
    finished
}

/// Runs rwscat with `args` like `yes LINE | rwscat`: stdin streams lines until it exits.
async fn rwscat_with_endless_stdin(args: &[&str], line: &str) -> Finished {
    let (child, mut input) = spawn_rwscat(args);
    let chunk = format!("{line}\n").repeat(1_000);
    let streaming = tokio::spawn(async move {
        // Bounded by LIMIT below; a write fails once rwscat has exited.
        while input.write_all(chunk.as_bytes()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let finished = wait(child).await;
    streaming.abort();
    finished
}

fn spawn_rwscat(args: &[&str]) -> (tokio::process::Child, tokio::process::ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rwscat"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("rwscat starts");
    let input = child.stdin.take().expect("piped stdin");
    (child, input)
}

/// Waits (bounded) for rwscat to exit.
async fn wait(child: tokio::process::Child) -> Finished {
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("rwscat exits in time")
        .expect("rwscat ran");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A feed at 200 msg/s: quick, yet slow enough that a connection lives long enough for the
/// server to read what the client sent on it before a scheduled drop.
async fn feed(faults: Faults) -> FeedServerHandle {
    FeedServer::start(FeedConfig {
        rate: 200,
        faults,
        ..FeedConfig::default()
    })
    .await
    .expect("feed server starts")
}

fn seqs(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).expect("each line is a message");
            value["seq"].as_u64().expect("with a seq")
        })
        .collect()
}

#[tokio::test]
async fn prints_messages_as_lines_through_drops() {
    let server = feed(Faults {
        drop_every: Some(7),
        ..Faults::default()
    })
    .await;
    let url = server.url();
    let finished = rwscat(
        &[
            &url,
            "--cursor-field",
            "seq",
            "--resume-param",
            "cursor",
            "--count",
            "30",
            "--backoff-initial",
            "10",
        ],
        "",
    )
    .await;
    assert_eq!(finished.code, Some(0), "stderr: {}", finished.stderr);
    assert_eq!(seqs(&finished.stdout), (1..=30).collect::<Vec<_>>());
    assert!(
        finished.stderr.contains("reconnecting in"),
        "stderr: {}",
        finished.stderr
    );
    server.shutdown().await.unwrap();
}

/// Lines go out in order. (A line written to a socket that then breaks may be lost with it:
/// sends are at-most-once once handed to a socket, so this test keeps the connection up.)
#[tokio::test]
async fn sends_stdin_lines_in_order() {
    let server = feed(Faults::default()).await;
    let url = server.url();
    let finished = rwscat(
        &[&url, "--count", "40", "--quiet"],
        "first line\nsecond line\n",
    )
    .await;
    assert_eq!(finished.code, Some(0), "stderr: {}", finished.stderr);
    let sent: Vec<String> = server
        .received()
        .into_iter()
        .filter_map(|message| match message.payload {
            ClientPayload::Text(text) => Some(text),
            ClientPayload::Binary(_) => None,
        })
        .collect();
    assert_eq!(sent, ["first line", "second line"]);
    server.shutdown().await.unwrap();
}

/// `yes hello | rwscat URL` while the server closes with 1012 every 50 messages: a close
/// that races the client's own sends reconnects, it is never a protocol error (exit 2).
#[tokio::test]
async fn a_server_close_while_stdin_streams_reconnects() {
    let server = feed(Faults {
        close_after: Some(CloseAfter {
            code: 1012,
            after: 50,
        }),
        ..Faults::default()
    })
    .await;
    let url = server.url();
    let finished = rwscat_with_endless_stdin(
        &[
            &url,
            "--cursor-field",
            "seq",
            "--resume-param",
            "cursor",
            "--count",
            "120",
            "--backoff-initial",
            "20",
            "--quiet",
        ],
        "hello",
    )
    .await;
    assert_eq!(finished.code, Some(0), "stderr: {}", finished.stderr);
    assert_eq!(seqs(&finished.stdout), (1..=120).collect::<Vec<u64>>());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exit_on_eof_flushes_and_exits() {
    let server = feed(Faults::default()).await;
    let url = server.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rwscat"))
        .args([url.as_str(), "--exit-on-eof", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"a\nb\nc\n").await.unwrap();
    drop(input);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(server.received().len(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejected_by_the_server_exits_2_and_names_the_status() {
    let server = feed(Faults {
        refuse: Some(Refusal {
            status: 401,
            remaining: None,
            retry_after_secs: None,
        }),
        ..Faults::default()
    })
    .await;
    let finished = rwscat(&[&server.url()], "").await;
    assert_eq!(finished.code, Some(2));
    assert!(
        finished.stderr.contains("HTTP 401"),
        "stderr: {}",
        finished.stderr
    );
    assert!(finished.stdout.is_empty());
    assert_eq!(server.stats().handshakes_refused, 1, "no retry after a 401");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn gives_up_after_the_failure_cap_with_exit_1() {
    // Bind and drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/feed");
    let finished = rwscat(
        &[
            &url,
            "--max-failures",
            "3",
            "--backoff-initial",
            "10",
            "--backoff-max",
            "50",
        ],
        "",
    )
    .await;
    assert_eq!(finished.code, Some(1), "stderr: {}", finished.stderr);
    assert!(
        finished.stderr.contains("gave up after 3 failed attempts"),
        "stderr: {}",
        finished.stderr
    );
}

#[tokio::test]
async fn usage_errors_exit_64() {
    for args in [
        &[][..],
        &["ws://h", "--count"][..],
        &["ws://h", "--nope"][..],
        &["http://h"][..],
    ] {
        let finished = rwscat(args, "").await;
        assert_eq!(finished.code, Some(64), "{args:?}: {}", finished.stderr);
        assert!(
            finished.stderr.starts_with("rwscat: "),
            "{args:?}: {}",
            finished.stderr
        );
    }
}
