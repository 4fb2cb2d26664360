#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the normal build (build/, g++),
# the plugin tests again with every instance isolated, every test again under
# AddressSanitizer + UBSan (build-asan/, clang), and the concurrency tests under
# ThreadSanitizer (build-tsan/, clang).
# Exit status is the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

status=0
run_suite() {  # name build-dir cmake-args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: build ($dir)"
  BUILD_DIR=$dir "$root/scripts/build.sh" "$@"
  echo "=== $name: test"
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j 2) || status=1
}

run_suite "release" "$root/build"
# The same plugin tests again with every plugin instance in a child process (isolation:
# process): a plugin must not be able to tell the difference. (The store's own tests run no
# plugin; the balancer tests are about replicas, and the replica tests run isolated anyway.)
echo "=== release, every instance isolated: test"
(cd "$root/build" && MCP_HOST_ISOLATION=process ctest --output-on-failure --timeout 300 -j 2 -E '^fuzz_|Isolation\.|StoreContract|PostgresStore|StateStore|BalancedTest|Haproxy') || status=1
# clang builds the sanitizer configuration in about half the time g++ takes (measured:
# 13.6 s vs 24.5 s for one integration test), and a second compiler checks the code too.
CC=clang CXX=clang++ run_suite "asan+ubsan" "$root/build-asan" -DMCPH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

# The tests of the hand-offs between threads (the scheduler, the stdio reader and its
# standby, the HTTP listener and its workers, stuck and cancelled calls, calls started on an
# isolated instance and finished by its reader thread) under
# ThreadSanitizer. Hosts the tests start report to files too: any report fails the run.
tsan=$root/build-tsan
tsan_tests=(test_limits test_stdio test_hardening test_http test_isolation)
echo "=== tsan: build ($tsan)"
CC=clang CXX=clang++ cmake -S "$root" -B "$tsan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMCPH_TSAN=ON >/dev/null
cmake --build "$tsan" -j "$(nproc)" --target "${tsan_tests[@]}"
echo "=== tsan: test"
rm -rf "$tsan/reports" && mkdir -p "$tsan/reports"
# (Not the two tests whose point is timing, which ThreadSanitizer's 5-15 times slowdown
# breaks: a 300 ms latency bound, and a worker pool taken to be busy 300 ms after its calls
# were sent. Both run in the three suites above. Of the isolation tests, those of calls in
# flight together, which hand each call between threads of the host, and of a reader that
# reads an isolated instance's answers while it waits: the crash tests expect a plugin's
# SIGSEGV to end its process, which ThreadSanitizer turns into an exit.)
for t in "${tsan_tests[@]}"; do
  filter=-HttpTest.ASlowCallDoesNotBlockOthers:Hardening.OverflowIsAnsweredWithoutReadingTheRequest
  [ "$t" = test_isolation ] && filter='Isolation.CallsInFlight*:Isolation.AReaderThatWaits*'
  (cd "$tsan/tests" && TSAN_OPTIONS="suppressions=$root/tests/tsan.supp log_path=$tsan/reports/tsan halt_on_error=0" \
    timeout 600 "./$t" --gtest_brief=1 --gtest_filter="$filter") || status=1
done
if compgen -G "$tsan/reports/tsan*" >/dev/null; then
  echo "=== tsan: reports"
  cat "$tsan"/reports/tsan*
  status=1
fi
exit $status
