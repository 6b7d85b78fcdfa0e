//! Benchmarks of resilient-ws, each printed as a table with a baseline measured in the same run.
#![forbid(unsafe_code)]

fn main() {
    println!("resilient-ws benchmarks: see bench/src for the suites");
}
