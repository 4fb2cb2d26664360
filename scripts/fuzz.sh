#!/usr/bin/env bash
# Fuzzes one parser for real with libFuzzer (ASan + UBSan, clang):
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh --list
#
# TARGET is one of tests/fuzz/fuzz_*.cpp without the prefix (engine, http_request, config,
# schema, oauth, request_state, redaction, trace, json). Builds the sanitizer configuration
# (build-asan/), starts from the checked-in seeds (tests/fuzz/corpus/TARGET) plus what
# earlier runs found (build-asan/fuzz/TARGET/corpus), and reports executions, coverage and
# findings. A crashing input lands in build-asan/fuzz/TARGET/ as crash-*; add it to the
# checked-in corpus once fixed, so CI replays it for good. FUZZ_NO_BUILD=1 uses the
# binaries as they are (e.g. while the tree is being edited).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
targets=$(cd "$root/tests/fuzz" && ls fuzz_*.cpp | sed 's/^fuzz_//;s/\.cpp$//' | tr '\n' ' ')
if [ "${1:-}" = "--list" ]; then echo "$targets"; exit 0; fi
if [ $# -lt 2 ]; then echo "usage: $0 TARGET SECONDS [libFuzzer options]   (targets: $targets)" >&2; exit 2; fi
target=$1 seconds=$2; shift 2
[[ " $targets " == *" $target "* ]] || { echo "$0: unknown target '$target' (targets: $targets)" >&2; exit 2; }
build=${BUILD_DIR:-$root/build-asan}
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  "$root/scripts/setup.sh"
  CC=clang CXX=clang++ BUILD_DIR=$build "$root/scripts/build.sh" -DMCPH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
fi
work=$build/fuzz/$target
mkdir -p "$work/corpus"
log=$work/last-run.log
echo "fuzzing $target for $seconds s (log: $log)"
set +e
(cd "$work" && "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  -print_final_stats=1 "$@" corpus "$root/tests/fuzz/corpus/$target") > "$log" 2>&1
status=$?
set -e
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
crashes=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
echo "$target: ${runs:-?} executions in $seconds s, ${cov:-no coverage line}, corpus $(ls "$work/corpus" | wc -l) inputs, findings: $crashes"
if [ $status -ne 0 ]; then echo "libFuzzer exited $status; see $log" >&2; fi
exit $status
