# Idempotent installers shared by the scripts: each checks before it installs.

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
  fi
}

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
    echo "installing wasm-bindgen-cli $want (takes a few minutes, once)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

# binaryen (wasm-opt), playwright-core and vite, pinned by package-lock.json.
ensure_node_tools() {
  if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/vite ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
}

# Debian's chromium and its driver, for the browser tests.
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    else
      sudo apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    fi
  fi
}

# The nightly that builds the npm package: only it can rebuild core and alloc with panics
# that abort on the spot (-Zbuild-std, -Cpanic=immediate-abort), which keeps every panic
# message and the formatting code behind them out of the .wasm. Pinned, so the size
# measured is the size shipped. Everything else builds on stable.
PACKAGE_TOOLCHAIN=nightly-2026-10-30
ensure_package_toolchain() {
  if ! rustup run "$PACKAGE_TOOLCHAIN" rustc --version >/dev/null 2>&1 \
    || ! rustup component list --toolchain "$PACKAGE_TOOLCHAIN" --installed | grep -q '^rust-src' \
    || ! rustup target list --toolchain "$PACKAGE_TOOLCHAIN" --installed | grep -qx wasm32-unknown-unknown; then
    rustup toolchain install "$PACKAGE_TOOLCHAIN" --profile minimal \
      --component rust-src --target wasm32-unknown-unknown
  fi
}
