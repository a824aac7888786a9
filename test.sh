#!/usr/bin/env bash
# Runs every test of the solution and ends with one line: "N passed, N failed, N skipped".
# Extra arguments go to `dotnet test`, e.g. ./test.sh --filter "Category!=EndToEnd" for the fast tests only,
# or ./test.sh --filter "Category=EndToEnd" for the end-to-end and crash tests alone.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if ! dotnet build Dts.slnx -c Debug -nologo -v quiet 2>&1 | tee -a "$log" | grep -E "error|Warn|Build succeeded" ; then
  :
fi
if grep -qE "^Build FAILED|: error " "$log"; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# PostgreSQL: the storage contract suite, the cluster tests and the PostgreSQL end-to-end tests
# read the connection string from DTS_TEST_PG. Unless one is given, a throwaway cluster is started
# here (scripts/pg-test-cluster) and stopped when the run ends. Without it those tests are skipped,
# except when CI is set: then they fail.
pg_dir=""
if [ -z "${DTS_TEST_PG:-}" ] && [ "${DTS_TEST_NO_PG:-}" != "1" ]; then
  pg_dir="$(mktemp -d /tmp/dts-pg.XXXXXX)"
  if cs="$(scripts/pg-test-cluster start "$pg_dir")"; then
    export DTS_TEST_PG="$cs"
    echo "PostgreSQL for the tests: $DTS_TEST_PG"
  else
    echo "PostgreSQL could not be started; its tests will be skipped (or fail, when CI is set)"
    rm -rf "$pg_dir"; pg_dir=""
  fi
fi
trap 'rm -f "$log"; if [ -n "$pg_dir" ]; then scripts/pg-test-cluster stop "$pg_dir"; fi' EXIT

# One test assembly at a time keeps the 2-core machines responsive for the end-to-end tests' child processes.
dotnet test Dts.slnx -c Debug --no-build -nologo -m:1 "$@" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}

read -r passed failed skipped < <(grep -E "^(Passed|Failed)!" "$log" | awk -F'[:,]' '
  { for (i = 1; i <= NF; i++) { gsub(/ /, "", $i) }
    for (i = 1; i < NF; i++) {
      if ($i ~ /Failed$/) f += $(i+1); if ($i == "Passed") p += $(i+1); if ($i == "Skipped") s += $(i+1) } }
  END { print p+0, f+0, s+0 }')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no tests ran"
  failed=1
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
