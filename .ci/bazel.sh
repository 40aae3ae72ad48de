#!/usr/bin/env bash
# Bazel check for CI (issue 8): `bazel build //...`, then the `smoke` test subset, offline.
# Call after the project venv exists at .venv:   bash .ci/bazel.sh
# Prints `bazel: N passed, N failed` (pytest test cases, read from each target's test.xml) as
# its last line and exits non-zero when Bazel fails. See docs/BAZEL.md.
#
# Environment: VENV (default .venv), BAZEL_TEST_TAG_FILTERS (default smoke; empty = all tests),
# TFDS_DATA_DIR (default ../shared/data/tfds when it exists).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
TAG_FILTERS=${BAZEL_TEST_TAG_FILTERS-smoke}

if ! command -v bazel >/dev/null 2>&1; then
    echo "bazel.sh: installing bazel-bootstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq bazel-bootstrap; } >/tmp/bazel-apt.log 2>&1; then
        tail -20 /tmp/bazel-apt.log >&2
        echo "bazel.sh: apt-get install bazel-bootstrap failed" >&2
        echo "bazel: 0 passed, 0 failed"
        exit 1
    fi
fi
if [ ! -x "$VENV/bin/python3" ]; then
    echo "bazel.sh: no virtualenv at $VENV (create it from requirements-test.txt first)" >&2
    echo "bazel: 0 passed, 0 failed"
    exit 1
fi
# Bazel's autodetecting Python toolchain runs the first python3 on PATH: the venv's.
export PATH="$VENV/bin:$PATH"
# Like tests/conftest.py under pytest, use the offline TFDS copy in ../shared when there is one
# (.bazelrc passes TFDS_DATA_DIR through to the tests).
if [ -z "${TFDS_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data/tfds" ]; then
    TFDS_DATA_DIR=$(cd "$ROOT/../shared/data/tfds" && pwd)
    export TFDS_DATA_DIR
fi

work=$(mktemp -d)
cleanup() {
    # In CI, stop this workspace's Bazel server so no JVM outlives the run.
    if [ -n "${CI:-}" ]; then bazel shutdown >/dev/null 2>&1; fi
    rm -rf "$work"
}
trap cleanup EXIT

COMMON=(--color=no --curses=no --show_progress_rate_limit=30)
start=$SECONDS

echo "bazel.sh: bazel build //..."
bazel build "${COMMON[@]}" //...
build_rc=$?

echo "bazel.sh: bazel test //... --test_tag_filters=$TAG_FILTERS"
bazel test "${COMMON[@]}" --keep_going --test_tag_filters="$TAG_FILTERS" \
    --build_event_json_file="$work/bep.json" //...
test_rc=$?

echo "bazel.sh: build exit $build_rc, test exit $test_rc, $((SECONDS - start)) s"

# Count test cases from the build event stream: each test target's last attempt, its pytest
# JUnit XML when there is one; a target that failed without a failing case counts one failure.
"$VENV/bin/python3" - "$work/bep.json" "$test_rc" <<'PY'
import json
import os
import sys
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlparse

bep_path, test_rc = sys.argv[1], int(sys.argv[2])
results, summaries = {}, {}
if os.path.exists(bep_path):
    with open(bep_path) as f:
        for line in f:
            event = json.loads(line)
            ident = event.get("id", {})
            if "testResult" in ident and "testResult" in event:
                results[ident["testResult"]["label"]] = event["testResult"]
            elif "testSummary" in ident and "testSummary" in event:
                summaries[ident["testSummary"]["label"]] = event["testSummary"]

passed = failed = 0
for label, result in sorted(results.items()):
    ok = result.get("status") == "PASSED"
    t_pass = t_fail = 0
    for out in result.get("testActionOutput", []):
        if out.get("name") != "test.xml":
            continue
        path = unquote(urlparse(out.get("uri", "")).path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            t_pass += tests - bad - int(suite.get("skipped", 0))
            t_fail += bad
    if not ok and t_fail == 0:
        t_fail = 1
    if ok and t_pass + t_fail == 0:
        t_pass = 1
    passed += t_pass
    failed += t_fail
# Targets that never ran (failed to build, no status) but were asked for.
for label, summary in summaries.items():
    if label not in results and summary.get("overallStatus") != "PASSED":
        failed += 1
if test_rc != 0 and failed == 0 and not results:
    print("bazel.sh: bazel test ran no test (exit %d)" % test_rc)
print("bazel: %d passed, %d failed" % (passed, failed))
PY

if [ "$build_rc" -ne 0 ] || [ "$test_rc" -ne 0 ]; then
    exit 1
fi
exit 0
