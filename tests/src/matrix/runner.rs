//! Running cells a few at a time, each on a runtime of its own.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

/// How long a cell's runtime may take to stop its tasks once the cell is over.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(2);

/// Runs `run` on every item with at most `jobs` at once (at least one), each on a thread of
/// its own, and returns the results in the items' order. Items are taken in order, so the
/// first ones start first.
pub fn run_bounded<T, R, F>(items: &[T], jobs: usize, run: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = Mutex::new(0_usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(item) = items.get(index) else { break };
                    let result = run(item);
                    results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .map(|result| result.expect("every item was run"))
        .collect()
}

/// Runs the future `make` returns on a fresh two-thread tokio runtime, under `limit`; the
/// runtime and every task left on it are stopped afterwards. A deadline overrun or a panic
/// comes back as an error saying so.
pub fn in_own_runtime<F, Fut>(limit: Duration, make: F) -> Result<String, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return Err(format!("no runtime: {error}")),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            match tokio::time::timeout(limit, make()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("the cell overran its {limit:?} deadline")),
            }
        })
    }));
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    outcome.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(format!("panicked: {message}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reports_panics_and_overruns() {
        let items = [1_u64, 2, 3, 4, 5];
        let results = run_bounded(&items, 2, |n| {
            in_own_runtime(Duration::from_millis(200), || async move {
                match n {
                    2 => panic!("two"),
                    4 => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        Ok(String::new())
                    }
                    n => Ok(n.to_string()),
                }
            })
        });
        assert_eq!(results[0], Ok("1".into()));
        assert_eq!(results[1], Err("panicked: two".into()));
        assert_eq!(results[2], Ok("3".into()));
        assert!(results[3].as_ref().is_err_and(|e| e.contains("deadline")));
        assert_eq!(results[4], Ok("5".into()));
    }
}
