//! The browser front-end of resilient-ws, shipped as the npm package `resilient-ws`.
//!
//! The same sans-IO core as the native client. The session runs here, in WebAssembly;
//! the browser's own objects stay in JavaScript (`js/host.js`): the `WebSocket`, one
//! `setTimeout` for the session's next deadline, `crypto.getRandomValues` for the jitter
//! seed. [`RawClient`] is the class that host drives: it feeds socket events in, and the
//! session's commands and events come back out as calls on the [`Host`]. Keeping the
//! browser objects on the JavaScript side keeps the module small (no futures executor, no
//! channel per socket, no per-message microtask) and lets a message reach the page without
//! copying its text back out of WebAssembly.
//!
//! Browsers cannot send Ping frames, so the heartbeat is an application message
//! (`heartbeat.message`) or, without one, an idle timeout on inbound traffic; it is on by
//! default with the native timings (`heartbeat: false` turns it off). The host's clock
//! counts the time the machine slept, so a silent connection is noticed on waking; coming
//! online or a tab becoming visible checks it at once.
//!
//! Browsers also hide the HTTP status of a refused handshake (every refusal looks like close
//! 1006), so refusals are retried with backoff up to the failure cap; close codes the server
//! sends after the upgrade (4401, 1008...) still decide as usual.
//! A connection the browser fails for a protocol violation (invalid UTF-8, a malformed frame)
//! is fatal, as natively; the browser hides which violation, so it is reported as 1002.
//!
//! The npm package is built without the default `std` feature: the module then carries
//! a small allocator and a panic handler that traps, instead of std's panic and formatting
//! machinery. No path in this crate is meant to panic; a trap would be a bug.
#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod client;
mod driver;
mod host;
#[cfg(test)]
mod interface;
mod report;
mod settings;
mod writes;

pub use client::RawClient;
pub use host::Host;

/// A free-list allocator a tenth the size of std's dlmalloc. The session allocates little
/// and frees it soon (one buffer per message), so the list stays short.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// Traps: the panic message is never formatted, so no formatting code is linked for it.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
