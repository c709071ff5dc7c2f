#!/usr/bin/env bash
# Mutation testing (cargo-mutants) of the cos-core lines a change touched, with a time bound (issue 18).
#
#   bash scripts/mutants.sh [BASE]
#
# BASE (default: the merge base with origin/main or main; on main itself, HEAD~1) is what the change is
# compared with: `git diff BASE` of cos-core/src (uncommitted edits included) goes to `cargo mutants
# --in-diff`, so only mutants on changed lines are tested. No cos-core source change: a quick pass.
# Fails when a mutant survives (a changed decision no test notices) or the baseline tests fail. When the
# time bound (MUTANTS_TIME_LIMIT seconds, default 600) runs out first, what was tested is reported and the
# rest is left untested with a warning (the run stays bounded in CI); survivors found so far still fail.
# MUTANTS=0 skips the run. The report is in target/mutants-diff/mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."
version=27.1.0
limit=${MUTANTS_TIME_LIMIT:-600}
out=target/mutants-diff

if [ "${MUTANTS:-1}" = 0 ]; then
  echo "== mutants: skipped (MUTANTS=0)"
  exit 0
fi
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "== mutants: not a git checkout, nothing to compare: skipped"
  exit 0
fi
base=${1:-}
if [ -z "$base" ]; then
  head=$(git rev-parse HEAD)
  for ref in origin/main main; do
    if git rev-parse -q --verify "$ref^{commit}" >/dev/null; then
      mb=$(git merge-base HEAD "$ref" 2>/dev/null || true)
      if [ -n "$mb" ] && [ "$mb" != "$head" ]; then
        base=$mb
        break
      fi
    fi
  done
  if [ -z "$base" ]; then
    base=$(git rev-parse -q --verify HEAD~1 || true)
  fi
fi
if [ -z "$base" ]; then
  echo "== mutants: no earlier commit to compare with: skipped"
  exit 0
fi

mkdir -p "$out"
diff="$out/change.diff"
git diff "$base" -- 'cos-core/src/*.rs' >"$diff"
if [ ! -s "$diff" ]; then
  echo "== mutants: no cos-core source change since $(git rev-parse --short "$base"): nothing to test"
  exit 0
fi
echo "== mutants: cos-core files changed since $(git rev-parse --short "$base"):"
git diff --stat "$base" -- 'cos-core/src/*.rs' | sed 's/^/   /'

if ! cargo mutants --version 2>/dev/null | grep -qF "$version"; then
  echo "== installing cargo-mutants $version (crates.io)"
  cargo install cargo-mutants --version "$version" --locked --quiet
fi

# cargo-mutants tests a copy of the tree elsewhere: point the signature-vector test at ../shared from here.
shared=${COS_SHARED:-$(pwd)/../shared}
if [ -z "${COS_SIGNATURE_VECTORS:-}" ] && [ -f "$shared/vectors/signatures.json" ]; then
  COS_SIGNATURE_VECTORS=$(cd "$shared/vectors" && pwd)/signatures.json
  export COS_SIGNATURE_VECTORS
fi
rm -rf "$out/mutants.out" "$out/mutants.out.old" # a report from an earlier run must not be read as this one's
# The tests of cos-core's lib and tests/ (doctests are left out: they show usage and each compiles alone).
# cos-core itself is compiled at opt-level 0 (its dependencies stay optimised): each mutant rebuilds it, and
# that halves the rebuild while the tests, whose hashing runs in the dependencies, barely slow down.
set +e
timeout --signal=INT --kill-after=60 "$limit" \
  cargo mutants -p cos-core --in-diff "$diff" -j 1 --timeout 120 --no-shuffle -o "$out" \
  --cargo-arg=--config=profile.dev.package.cos-core.opt-level=0 -- --tests
status=$?
set -e
report="$out/mutants.out"
missed=$(grep -c . "$report/missed.txt" 2>/dev/null || true)
caught=$(grep -c . "$report/caught.txt" 2>/dev/null || true)
echo "== mutants: ${caught:-0} caught, ${missed:-0} missed (report: $report)"
if [ "${missed:-0}" != 0 ]; then
  echo "Surviving mutants (add a test that fails on each, or an exclude_re entry with the reason in .cargo/mutants.toml):"
  sed 's/^/   /' "$report/missed.txt"
  exit 1
fi
case $status in
  0) ;;
  124 | 130 | 137)
    echo "warning: the ${limit}s bound ran out before every mutant of this change was tested;"
    echo "         run the rest locally: cargo mutants -p cos-core --in-diff $diff -- --tests"
    ;;
  2) exit 1 ;;
  3) echo "warning: some mutants timed out (listed in $report/timeout.txt): counted as caught" ;;
  *)
    echo "cargo mutants failed (exit $status): see $report/debug.log"
    exit 1
    ;;
esac
