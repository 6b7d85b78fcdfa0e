//! Benchmarks of resilient-ws, each printed as a table with a baseline measured in the same
//! run, and written to BENCHMARKS.md with `--out`.
//!
//! ```text
//! cargo run --release -p resilient-ws-bench -- [--quick] [--out BENCHMARKS.md] [--only SUITES]
//! ```
//!
//! Suites (one file each): `receive` and `send` (throughput.rs), `latency`, `memory`,
//! `recovery`, `storm`, `fanout`; the receive table's peer clients are in peers.rs, its
//! session-alone table in diagnose.rs. The servers are in servers.rs (and the fan-out suite's
//! in fanout_server.rs); this binary runs them in child processes of itself (`--serve`,
//! `--serve-fanout`), and the memory suite's clients too (`--mem-client`).
//! Benchmarks print figures; they assert nothing.
#![forbid(unsafe_code)]

mod clients;
mod diagnose;
mod fanout;
mod fanout_server;
mod latency;
mod memory;
mod peers;
mod recovery;
mod report;
mod servers;
mod storm;
mod system;
mod throughput;

use std::time::{Duration, Instant};

use report::{Report, Table};

const USAGE: &str = "usage: resilient-ws-bench [--quick] [--out FILE] [--only SUITE,...]
  --quick        scaled down, for a smoke run (under a minute)
  --out FILE     also write the report (Markdown) to FILE
  --only SUITES  comma-separated: receive,send,latency,memory,recovery,storm,fanout";

const SUITES: [&str; 7] = [
    "receive", "send", "latency", "memory", "recovery", "storm", "fanout",
];

/// How big each suite runs.
#[derive(Debug, Clone)]
pub(crate) struct Scale {
    pub(crate) repeats: usize,
    pub(crate) small_messages: u64,
    pub(crate) large_messages: u64,
    pub(crate) send_messages: u64,
    pub(crate) round_trips: usize,
    pub(crate) memory_connections: usize,
    pub(crate) restart_downs: Vec<Duration>,
    pub(crate) restart_repeats: usize,
    pub(crate) heartbeats: Vec<(Duration, Duration)>,
    pub(crate) blackhole_repeats: usize,
    pub(crate) storm_clients: Vec<usize>,
    pub(crate) storm_down: Duration,
}

impl Scale {
    fn full() -> Self {
        let ms = Duration::from_millis;
        Self {
            repeats: 3,
            small_messages: 1_000_000,
            large_messages: 100_000,
            send_messages: 1_000_000,
            round_trips: 20_000,
            memory_connections: 10_000,
            restart_downs: vec![ms(0), ms(100), ms(300), ms(1_000)],
            restart_repeats: 5,
            heartbeats: vec![(ms(250), ms(250)), (ms(1_000), ms(500))],
            blackhole_repeats: 5,
            storm_clients: vec![1_000, 10_000],
            storm_down: ms(1_000),
        }
    }

    fn quick() -> Self {
        let ms = Duration::from_millis;
        Self {
            repeats: 1,
            small_messages: 100_000,
            large_messages: 5_000,
            send_messages: 100_000,
            round_trips: 2_000,
            memory_connections: 1_000,
            restart_downs: vec![ms(0), ms(300)],
            restart_repeats: 1,
            heartbeats: vec![(ms(200), ms(100))],
            blackhole_repeats: 2,
            storm_clients: vec![1_000],
            storm_down: ms(500),
        }
    }
}

struct Options {
    quick: bool,
    out: Option<String>,
    only: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        out: None,
        only: SUITES.iter().map(|suite| (*suite).to_owned()).collect(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--out" => options.out = Some(args.next().ok_or("--out needs a file")?.clone()),
            "--only" => {
                let list = args.next().ok_or("--only needs a list of suites")?;
                options.only = list.split(',').map(str::to_owned).collect();
                if let Some(unknown) = options.only.iter().find(|s| !SUITES.contains(&s.as_str())) {
                    return Err(format!("unknown suite {unknown}"));
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // This binary is also the servers' and the memory clients' child process.
    let child = match args.first().map(String::as_str) {
        Some("--serve") => Some(servers::serve_main(&args[1..]).map_err(|e| e.to_string())),
        Some("--mem-client") => Some(memory::client_main(&args[1..]).map_err(|e| e.to_string())),
        Some("--serve-fanout") => {
            Some(fanout_server::serve_main(&args[1..]).map_err(|e| e.to_string()))
        }
        _ => None,
    };
    if let Some(result) = child {
        if let Err(error) = result {
            eprintln!("resilient-ws-bench child: {error}");
            std::process::exit(1);
        }
        return;
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("{error}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let command = format!(
        "cargo run --release -p resilient-ws-bench --{}",
        args.iter().map(|arg| format!(" {arg}")).collect::<String>()
    );
    let scale = if options.quick {
        Scale::quick()
    } else {
        Scale::full()
    };
    let mut report = Report {
        command,
        quick: options.quick,
        tables: Vec::new(),
    };
    println!("{}", report.header());
    let started = Instant::now();
    for suite in SUITES {
        if !options.only.iter().any(|only| only == suite) {
            continue;
        }
        eprintln!(
            "[{:>5.1} s] running {suite}",
            started.elapsed().as_secs_f64()
        );
        for table in run_suite(suite, &scale) {
            println!("{}", table.markdown());
            report.tables.push(table);
        }
    }
    eprintln!("[{:>5.1} s] done", started.elapsed().as_secs_f64());
    if let Some(out) = options.out {
        match std::fs::write(&out, report.markdown()) {
            Ok(()) => eprintln!("wrote {out}"),
            Err(error) => {
                eprintln!("cannot write {out}: {error}");
                std::process::exit(1);
            }
        }
    }
}

fn run_suite(suite: &str, scale: &Scale) -> Vec<Table> {
    let needs_server = matches!(suite, "receive" | "send" | "latency");
    let needs_runtime = needs_server || suite == "recovery";
    let runtime = if needs_runtime {
        match clients::runtime() {
            Ok(runtime) => Some(runtime),
            Err(error) => return vec![Table::failed(suite, &format!("runtime: {error}"))],
        }
    } else {
        None
    };
    let server = if needs_server {
        match servers::ServerProcess::spawn(0, false) {
            Ok(server) => Some(server),
            Err(error) => return vec![Table::failed(suite, &format!("server: {error}"))],
        }
    } else {
        None
    };
    let tables = match (suite, runtime.as_ref(), server.as_ref()) {
        ("receive", Some(runtime), Some(server)) => throughput::receive(runtime, server, scale),
        ("send", Some(runtime), Some(server)) => vec![throughput::send(runtime, server, scale)],
        ("latency", Some(runtime), Some(server)) => vec![latency::latency(runtime, server, scale)],
        ("recovery", Some(runtime), _) => recovery::recovery(runtime, scale),
        ("memory", ..) => vec![memory::memory(scale)],
        ("storm", ..) => scale
            .storm_clients
            .iter()
            .map(|clients| storm::storm(*clients, scale))
            .collect(),
        ("fanout", ..) => fanout::fanout(scale),
        _ => vec![Table::failed(suite, "unknown suite")],
    };
    // Sessions still closing are not waited for.
    if let Some(runtime) = runtime {
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    tables
}
