//! Time and randomness from the browser: `performance.now()` and `crypto.getRandomValues`.

use js_sys::{Reflect, global};
use resilient_ws_core::Timestamp;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Crypto, Performance};

/// The page's monotonic clock (also present in workers).
pub(crate) struct Clock {
    performance: Performance,
}

impl Clock {
    pub(crate) fn new() -> Result<Self, JsValue> {
        let performance =
            Reflect::get(&global(), &"performance".into())?.dyn_into::<Performance>()?;
        Ok(Self { performance })
    }

    pub(crate) fn now(&self) -> Timestamp {
        let millis = self.performance.now().max(0.0);
        Timestamp::from_duration(std::time::Duration::from_secs_f64(millis / 1000.0))
    }
}

/// A seed from the browser's cryptographic generator, so every tab spreads its retries
/// differently.
pub(crate) fn random_seed() -> Result<u64, JsValue> {
    let crypto = Reflect::get(&global(), &"crypto".into())?.dyn_into::<Crypto>()?;
    let mut bytes = [0u8; 8];
    crypto.get_random_values_with_u8_array(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}
