"""Runs pytest on the test files named in argv: the `main` of every Bazel py_test.

Bazel runs a test with its runfiles tree as the working directory and mounts sources
read-only, so pytest's cache is turned off, and temporary files (pytest's `tmp_path`)
and HOME go to $TEST_TMPDIR.

The exit code is pytest's own: 0 when all collected tests pass or skip, non-zero
otherwise (including 5, "no tests collected", for a module that defines no tests).
"""

import os
import sys


def main(argv):
  """Runs pytest on the test files `argv` as Bazel wants it; returns its exit code."""
  import pytest  # pylint: disable=g-import-not-at-top

  # `-n 0`: no pytest-xdist workers (pytest.ini asks for them); Bazel already runs the
  # test modules in parallel, one per target.
  args = ["-p", "no:cacheprovider", "-q", "-n", "0"]
  tmpdir = os.environ.get("TEST_TMPDIR")
  if tmpdir:
    args += ["--basetemp", os.path.join(tmpdir, "pytest")]
    # Bazel sets no HOME; caches (~/.keras, ~/tensorflow_datasets) need a writable one.
    os.environ.setdefault("HOME", tmpdir)
  xml = os.environ.get("XML_OUTPUT_FILE")
  if xml:
    # Bazel reads per-test-case results from this JUnit XML file.
    args += ["--junitxml", xml]
  return int(pytest.main(args + list(argv)))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
