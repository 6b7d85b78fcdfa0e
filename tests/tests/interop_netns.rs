//! A true half-open connection, made in the kernel: the reference feed-server runs in a
//! network namespace of its own, reached over a veth pair (10.200.x.y/30, addresses of this
//! test's own namespace), and once the client is connected the host end of the link is
//! taken down, so packets vanish without a FIN or a RST. The client must find the
//! connection dead within its heartbeat interval + timeout, and resume exactly-once when the
//! link comes back.
//!
//! Where network namespaces are not permitted (tried once with `ip netns add`), the test
//! prints `skipped: network namespaces not permitted here: <error>` and passes. The
//! namespace and the veth pair are removed on exit, on failure too (and leftovers of
//! earlier runs that were killed are removed first).
//!
//! Needs `scripts/test-interop.sh` (it exports `INTEROP_FEED_SERVER` and installs iproute2
//! when `ip` is missing).

mod interop_support;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use interop_support::{
    Json, ServerProcess, addr_after, assert_contiguous, cursors, describe_states, env_path,
    http_get,
};
use resilient_ws::{Client, Disconnect, Reason, State};
use resilient_ws_tests::Recorder;
use tokio::time::{Instant, sleep, timeout};

/// Bound of a single wait for messages or a state.
const LIMIT: Duration = Duration::from_secs(10);
/// Backstop of the test.
const TEST_LIMIT: Duration = Duration::from_secs(60);
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);
/// Measured times may exceed their bound by this much: the event channel, the recorder's
/// task hops and a busy machine's scheduling.
const SLACK: Duration = Duration::from_millis(400);
/// How long the link stays down after the client found the connection dead.
const DOWN_AFTER_DETECTION: Duration = Duration::from_millis(1500);
const PORT: u16 = 9001;
/// Names of this suite's namespaces start with this, followed by the test process's id.
const NS_PREFIX: &str = "rwsi-";
/// The metric of the blackhole route under the link's own (metric 0) route.
const BLACKHOLE_METRIC: &str = "4242";

/// Runs `ip ARGS`; its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run `ip`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A network namespace with one end of a veth pair in it: the test's own small network.
struct Netns {
    name: String,
    /// `10.200.x.y/30`: the host end is `.y+1`, the namespace's `.y+2`.
    subnet: String,
    host_if: String,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
}

impl Netns {
    /// Makes the namespace and the link; `Err` when namespaces are not permitted here.
    fn create() -> Result<Self, String> {
        remove_leftovers();
        let pid = std::process::id();
        let name = format!("{NS_PREFIX}{pid}");
        ip(&["netns", "add", &name])?;
        let subnet = subnet(pid);
        let [a, b, c, d] = subnet.octets();
        // From here on, dropping `netns` removes whatever was made.
        let netns = Self {
            host_if: format!("rwsh{pid}"),
            host_addr: Ipv4Addr::new(a, b, c, d + 1),
            ns_addr: Ipv4Addr::new(a, b, c, d + 2),
            subnet: format!("{subnet}/30"),
            name,
        };
        // The safety net, first: while the link is down its connected route is gone, and
        // without this the test's packets for the namespace would follow the default route
        // off the machine. A blackhole route of a higher metric drops them here instead.
        ip(&[
            "route",
            "add",
            "blackhole",
            &netns.subnet,
            "metric",
            BLACKHOLE_METRIC,
        ])?;
        let ns_if = format!("rwsn{pid}");
        let (host, inside) = (
            format!("{}/30", netns.host_addr),
            format!("{}/30", netns.ns_addr),
        );
        let name = netns.name.as_str();
        ip(&[
            "link",
            "add",
            &netns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", name])?;
        ip(&["addr", "add", &host, "dev", &netns.host_if])?;
        ip(&["link", "set", &netns.host_if, "up"])?;
        ip(&["-n", name, "addr", "add", &inside, "dev", &ns_if])?;
        ip(&["-n", name, "link", "set", &ns_if, "up"])?;
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        netns.assert_routed_over_the_veth();
        Ok(netns)
    }

    /// The namespace's address is reached over this test's veth and nothing else.
    fn assert_routed_over_the_veth(&self) {
        let output = Command::new("ip")
            .args(["route", "get", &self.ns_addr.to_string()])
            .output()
            .expect("ip route get");
        let route = String::from_utf8_lossy(&output.stdout);
        assert!(
            route.contains(&format!("dev {} ", self.host_if)),
            "{} is not routed over {}: {route}",
            self.ns_addr,
            self.host_if
        );
    }

    /// Takes the host end of the link down or brings it up again.
    fn set_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["link", "set", &self.host_if, state]).unwrap_or_else(|error| panic!("{error}"));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        let _ = ip(&["link", "del", &self.host_if]);
        // Last: nothing of this test may still be sending to the namespace by now (the
        // test's runtime, and with it the client, is gone before this runs).
        let _ = ip(&[
            "route",
            "del",
            "blackhole",
            &self.subnet,
            "metric",
            BLACKHOLE_METRIC,
        ]);
    }
}

/// The namespace's /30 for a test process: `10.200.x.y` from its id.
fn subnet(pid: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 200, ((pid / 64) % 256) as u8, ((pid % 64) * 4) as u8)
}

/// Removes the namespaces (and host links) of earlier runs whose process is gone.
fn remove_leftovers() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing the namespace {name} left by an earlier run");
            let _ = ip(&["netns", "del", name]);
            let _ = ip(&["link", "del", &format!("rwsh{pid}")]);
            if let Ok(pid) = pid.parse() {
                let subnet = format!("{}/30", subnet(pid));
                let _ = ip(&[
                    "route",
                    "del",
                    "blackhole",
                    &subnet,
                    "metric",
                    BLACKHOLE_METRIC,
                ]);
            }
        }
    }
}

/// Not a `#[tokio::test]`: the runtime, and with it every task of the client, must be gone
/// before the namespace and its routes are removed (on failure too), so locals are declared
/// in that order (dropped in reverse).
#[test]
fn interop_netns_a_link_taken_down_is_found_dead_and_the_feed_resumes_when_it_is_back() {
    let feed_server = env_path("INTEROP_FEED_SERVER");
    let netns = match Netns::create() {
        Ok(netns) => netns,
        Err(error) => {
            // Straight to the process's stderr, past the test harness's capture: a skip is
            // shown even when the test passes quietly.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: network namespaces not permitted here: {error}"
            );
            return;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(link_down_scenario(&netns, feed_server));
    drop(runtime);
    drop(netns);
}

async fn link_down_scenario(netns: &Netns, feed_server: PathBuf) {
    timeout(TEST_LIMIT, async {
        let listen = SocketAddr::from((netns.ns_addr, PORT));
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &netns.name])
            .arg(&feed_server)
            .args(["--listen", &listen.to_string(), "--rate", "50"]);
        // `ip netns exec` execs the server: killing it (on drop too) kills the server.
        let server = ServerProcess::start("feed-server in a netns", command, |line| {
            addr_after(line, "listening on ws://")
        })
        .await;
        assert_eq!(server.addr, listen);
        let (client, events) = Client::builder(server.ws_url("/feed"))
            .cursor_field("seq")
            .resume_query("cursor")
            .heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .backoff(Duration::from_millis(100), Duration::from_millis(500))
            .max_failures(None)
            .seed(0x0000_4E75)
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(40, LIMIT).await;

        netns.set_link(false);
        let down_at = Instant::now();
        recorder
            .wait_for("the heartbeat to find the connection dead", LIMIT, |r| {
                r.states().iter().any(|(_, _, reason)| {
                    *reason == Reason::Disconnected(Disconnect::HeartbeatTimeout)
                })
            })
            .await;
        let found_at = recorder
            .first_state(|state, reason| {
                matches!(state, State::Reconnecting { .. })
                    && *reason == Reason::Disconnected(Disconnect::HeartbeatTimeout)
            })
            .expect("reconnecting after the heartbeat timeout");
        let detection = found_at - down_at;
        let bound = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT;
        assert!(
            detection <= bound + SLACK,
            "found dead {detection:?} after the link went down; bound {bound:?} + {SLACK:?}"
        );
        assert_eq!(recorder.opens(), 1, "{:?}", describe_states(&recorder));
        let before = cursors(&recorder).len();

        sleep(DOWN_AFTER_DETECTION).await;
        assert_eq!(
            recorder.opens(),
            1,
            "nothing can connect while the link is down"
        );
        netns.set_link(true);
        let up_at = Instant::now();
        recorder
            .wait_for("the reconnection over the link", LIMIT, |r| r.opens() == 2)
            .await;
        let reconnected = recorder
            .states()
            .iter()
            .filter(|(_, state, _)| *state == State::Open)
            .nth(1)
            .map(|(at, _, _)| *at - up_at)
            .unwrap_or_default();
        recorder.wait_delivered(before + 60, LIMIT).await;
        assert_contiguous(&cursors(&recorder), 1, "across the dead link");

        let stats = match http_get(server.addr, "/control/stats").await {
            Ok(body) => Json(body),
            Err(error) => panic!("stats: {error}\n{}", server.output()),
        };
        assert_eq!(
            stats.u64("connections_accepted"),
            2,
            "one connection before, one after: {stats:?}"
        );
        client.close(1000, "test over").await.expect("close");
        eprintln!(
            "netns: link down found dead after {detection:?} (bound {bound:?}); reconnected \
             {reconnected:?} after the link came up; {} messages exactly once; states: {:?}",
            cursors(&recorder).len(),
            describe_states(&recorder)
        );
    })
    .await
    .expect("test exceeded its deadline");
}
