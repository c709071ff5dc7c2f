#!/usr/bin/env bash
# The project's whole test suite, as CI runs it (README: "Run the tests").
#  1. installs what the tests need that cargo does not (Debian's chromium, for the browser form-upload test);
#  2. cargo test for the whole workspace (protocol, state-machine, end-to-end over TCP, both transports);
#  3. the official Tencent SDKs (Python and Node, pinned) against the local server from cos-testkit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=${COS_SHARED:-$root/../shared}

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (browser form-upload test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed; the browser test will say so"
  fi
fi

echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/cos-rs-cargo-test.log
test "${PIPESTATUS[0]}" = 0

if [ -x "$shared/oracles/run-official.sh" ] || [ -f "$shared/oracles/run-official.sh" ]; then
  echo "== official SDKs against the cos-testkit server"
  cargo build -q -p cos-testkit --bin cos-testkit
  bucket=examplebucket-1250000000 id=AKIDTESTKIT key=testkit-oracle-secret
  log=$(mktemp)
  ./target/debug/cos-testkit serve --addr 127.0.0.1:0 --bucket "$bucket" --secret-id "$id" --secret-key "$key" >"$log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
  addr=$(sed -n 's#^listening on http://##p' "$log" | head -n 1)
  [ -n "$addr" ] || { echo "server did not start:"; cat "$log"; exit 1; }
  bash "$shared/oracles/run-official.sh" "$addr" "$bucket" "$id" "$key"
else
  echo "== $shared/oracles not found: official-SDK checks skipped"
fi
