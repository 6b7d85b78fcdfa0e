# Idempotent installers of the interop suites' third-party servers (sourced by
# scripts/test-interop.sh). Each checks before it installs; quick when already there.

INTEROP_VENV=.venv-interop
INTEROP_REQUIREMENTS=tests/interop/requirements.txt

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# FastAPI, uvicorn and websockets, pinned by tests/interop/requirements.txt, in a venv of
# the repository's own (.venv-interop/, created only if missing). pip runs only when the
# requirements changed since the last install (a stamp file holds their checksum).
ensure_interop_python() {
  if [ ! -x "$INTEROP_VENV/bin/python" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    fi
    echo "creating $INTEROP_VENV"
    python3 -m venv "$INTEROP_VENV"
  fi
  local stamp="$INTEROP_VENV/.requirements.sha256"
  local want
  want=$(sha256sum "$INTEROP_REQUIREMENTS" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing $INTEROP_REQUIREMENTS into $INTEROP_VENV"
    "$INTEROP_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$INTEROP_REQUIREMENTS"
    echo "$want" >"$stamp"
  fi
}

# Node's `ws`, pinned by tests/interop/package-lock.json, into tests/interop/node_modules.
ensure_interop_node() {
  if [ ! -f tests/interop/node_modules/ws/package.json ] \
    || [ tests/interop/package-lock.json -nt tests/interop/node_modules/.package-lock.json ]; then
    echo "installing node ws into tests/interop/node_modules"
    npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
  fi
}

# `ip` (iproute2), for the network-namespace suite.
ensure_iproute2() {
  if ! command -v ip >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
  fi
}
