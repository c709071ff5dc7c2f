#!/usr/bin/env bash
# The browser SDK's part of the conformance suite (scripts/conformance.sh runs it once per addressing mode).
#
# Runs `cargo test -p cos-examples --test browser_sdk` (examples/tests/browser_sdk.rs: the pinned cos-js-sdk-v5
# in headless Chromium, on a page of another origin, against a cos-testkit server the test starts itself) and
# turns what it prints into the suite's lines: `ok   browser MODE: FLOW` per browser flow that passed, or one
# `FAIL browser MODE: ...: WHY`. The test refuses to skip under CI=true, so a missing chromium, node or npm
# is a FAIL there; elsewhere it is a `todo` line. Exits non-zero on failure.
#
# The test starts its own server with the page's Domain set to it (the custom-domain mode); the vhost mode and
# runs against real COS (--cos) print `todo` lines.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${CONFORMANCE_MODE:-custom-domain}
label="browser $mode"
if [ "${CONFORMANCE_LOCAL:-1}" != 1 ]; then
  echo "todo $label: cos-js-sdk-v5 against real COS (examples/tests/browser_sdk.rs runs against its own local server only)"
  exit 0
fi
if [ "$mode" != custom-domain ]; then
  echo "todo $label: cos-js-sdk-v5 with the bucket in the Host (examples/tests/browser_sdk.rs runs with a custom domain only)"
  exit 0
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
cmd=(cargo test -q -p cos-examples --test browser_sdk -- --nocapture --test-threads 1)
"${cmd[@]}" >"$out" 2>&1
rc=$?

# What the test prints (eprintln!): "without a CORS rule the page got: ...", then the flows that passed as a
# pretty-printed list: `browser flows passed: [`, one `    "FLOW",` line each, `]`.
refused=$(grep -c '^without a CORS rule the page got: ' "$out")
mapfile -t flows < <(sed -n '/^browser flows passed: \[/,/^\]/{s/^ *"\(.*\)",\{0,1\}$/\1/p}' "$out")
skipped=$(sed -n 's/^SKIPPED: //p' "$out" | head -n 1)

if [ "$rc" = 0 ] && [ -n "$skipped" ]; then
  echo "todo $label: skipped: $skipped (set CI=true to make this a failure)"
  exit 0
fi
if [ "$rc" = 0 ] && [ "$refused" -gt 0 ] && [ ${#flows[@]} -gt 0 ]; then
  echo "ok   $label: CORS: a page on another origin is refused with no rule"
  for f in "${flows[@]}"; do echo "ok   $label: $f"; done
  echo "== $label: $(( ${#flows[@]} + 1 )) checks passed (${cmd[*]})"
  exit 0
fi
# A failure: say why in one line (the test's panic message), and show the end of its output.
why=$(grep -m1 -A1 "panicked at" "$out" | tail -n 1 | tr -d '\r' | cut -c1-300)
[ -n "$why" ] || why="exit status $rc"
[ "$rc" != 0 ] || why="the test passed but printed no flows"
tail -n 40 "$out" | sed 's/^/    /'
echo "FAIL $label: cos-js-sdk-v5 flows (${cmd[*]}): $why"
exit 1
