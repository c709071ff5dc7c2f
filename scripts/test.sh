#!/usr/bin/env bash
# The project's whole test suite, as CI runs it (README: "Run the tests").
#  1. installs what the tests need that cargo does not (Debian's chromium, for the browser form-upload test);
#  2. cargo test for the whole workspace (protocol, state-machine, end-to-end over TCP, both transports);
#  3. the conformance suite (scripts/conformance.sh): the official Tencent SDKs (Python and Node, pinned in
#     conformance/) through every upload flow against the local server from cos-testkit;
#  4. the ../shared/oracles runs, when that folder exists, as a second opinion.
set -euo pipefail
oracle_log=/dev/null
conformance_log=$(mktemp)
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

# The command-line tests (examples/tests/cli.rs, kill9.rs) run the built `upload` example as a user would.
# `cargo test` builds that example only as its unit-test harness (`test = true`), so build the binary first.
echo "== cargo build -p cos-examples --example upload"
cargo build -p cos-examples --example upload
# examples/tests/download_kill9.rs runs the built `download` example the same way.
echo "== cargo build -p cos-examples --example download"
cargo build -p cos-examples --example download
echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/cos-rs-cargo-test.log
test "${PIPESTATUS[0]}" = 0

echo "== conformance suite: official SDKs against cos-testkit (scripts/conformance.sh)"
conformance_ok=1
bash scripts/conformance.sh --local 2>&1 | tee "$conformance_log" || conformance_ok=0

# The official SDKs' three runs (as ../shared/oracles/run-official.sh makes them), each against a fresh
# server: run-official.sh runs both Python modes against one server with the same keys, so the second run's
# first append at position 0 meets the 11-byte object the first run left, and COS itself answers 409 there.
if [ -f "$shared/oracles/setup.sh" ]; then
  echo "== official SDKs against the cos-testkit server"
  home=$(bash "$shared/oracles/setup.sh" | tail -n 1)
  cargo build -q -p cos-testkit --bin cos-testkit
  bucket=examplebucket-1250000000 id=AKIDTESTKIT key=testkit-oracle-secret
  failed=0
  oracle_log=$(mktemp)
  run_oracle() { # name, command...
    local name=$1; shift
    local log; log=$(mktemp)
    ./target/debug/cos-testkit serve --addr 127.0.0.1:0 --bucket "$bucket" --secret-id "$id" --secret-key "$key" >"$log" 2>&1 &
    local server=$!
    for _ in $(seq 1 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
    local addr; addr=$(sed -n 's#^listening on http://##p' "$log" | head -n 1)
    echo "== $name"
    if [ -z "$addr" ]; then echo "server did not start:"; cat "$log"; failed=1
    else "$@" "$addr" "$bucket" "$id" "$key" ${ORACLE_MODE:-} | tee -a "$oracle_log" || failed=1; fi
    kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
  }
  run_oracle "cos-python-sdk-v5, custom-domain addressing" "$home/venv/bin/python" "$shared/oracles/official_python.py"
  ORACLE_MODE=vhost run_oracle "cos-python-sdk-v5, bucket in the Host header" "$home/venv/bin/python" "$shared/oracles/official_python.py"
  NODE_PATH="$home/node/node_modules" run_oracle "cos-nodejs-sdk-v5" node "$shared/oracles/official_node.js"
  [ "$failed" = 0 ] || { echo "official SDK checks failed"; exit 1; }
else
  echo "== $shared/oracles not found: official-SDK checks skipped"
fi

# Mutation testing of the cos-core lines this change touched (scripts/mutants.sh): a quick pass when no
# cos-core source changed, otherwise bounded by MUTANTS_TIME_LIMIT (default 600 s); fails on a survivor.
echo "== mutation testing of the changed cos-core lines (scripts/mutants.sh)"
mutants_ok=1
bash scripts/mutants.sh || mutants_ok=0

# One closing line for the whole suite: cargo's test results, the conformance suite and the oracles' checks.
passed=$(grep -ho '[0-9]* passed' /tmp/cos-rs-cargo-test.log "$conformance_log" "$oracle_log" | awk '{s+=$1} END {print s+0}')
failed_n=$(grep -ho '[0-9]* failed' /tmp/cos-rs-cargo-test.log "$conformance_log" "$oracle_log" | awk '{s+=$1} END {print s+0}')
echo "all: $passed passed, $failed_n failed"
[ "$conformance_ok" = 1 ] || { echo "conformance suite failed"; exit 1; }
[ "$mutants_ok" = 1 ] || { echo "mutation testing found surviving mutants (scripts/mutants.sh)"; exit 1; }
