#!/bin/sh
# Stand-in coverage tool: this project's offline Bazel setup has no coverage support.
echo "bazel coverage is not supported offline in this project (see docs/BAZEL.md)" >&2
exit 1
