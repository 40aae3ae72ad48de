"""BUILD declares every package and test module, and names only files that exist.

`bash .ci/bazel.sh` builds and runs BUILD with Bazel; these checks need no Bazel. They
read BUILD with regular expressions: a module counts as declared when a `glob` in the
`srcs` of a rule of the right kind (or the `for src in glob(...)` of a comprehension of
such rules) matches it, or when that rule names it.
"""

import re
from pathlib import Path

import pytest

# Resolved: under `bazel test` this file is a runfiles symlink, and the checks must see
# the source tree, not the files Bazel already chose to declare.
ROOT = Path(__file__).resolve().parents[1]
GLOB = re.compile(r"(?:\bsrcs\s*=|\bin)\s*glob\(\s*\[(.*?)\]"
                  r"(?:\s*,\s*exclude\s*=\s*\[(.*?)\])?", re.S)
STRING = re.compile(r'"([^"]*)"')
FILE_NAME = re.compile(r"[\w-][\w./-]*\.\w+")  # "train.py", not ":label" or "tests/"


def glob_matches(pattern, path):
  """Whether Bazel's glob `pattern` matches `path`: `**` spans folders, `*` one name."""
  regex = "".join("(?:[^/]+/)*" if part == "**" else
                  re.escape(part).replace(r"\*", "[^/]*") + "/"
                  for part in pattern.split("/"))
  return re.fullmatch(regex, path + "/") is not None


def statements(text):
  """BUILD's top-level statements, comments left out, as `(rule kind, text)`: a rule
  call, or a list comprehension of rule calls, starts at the beginning of a line."""
  text = re.sub(r"#.*", "", text)
  chunks = re.split(r"\n(?=[^\s)\]}])", text)
  return [(match.group(1), chunk) for chunk in chunks
          if (match := re.match(r"\[?\s*(\w+)\(", chunk))]


def declared(kind, path):
  """Whether a rule of `kind` in BUILD has `path` in its srcs (globs or a name)."""
  for rule, text in statements((ROOT / "BUILD").read_text()):
    if rule != kind:
      continue
    for include, exclude in GLOB.findall(text):
      if (any(glob_matches(p, path) for p in STRING.findall(include))
          and not any(glob_matches(p, path) for p in STRING.findall(exclude))):
        return True
    if path in STRING.findall(text):
      return True
  return False


def project_files(pattern):
  """Paths, relative to the repository, of the files that match a glob pattern."""
  return sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern)
                if p.is_file() and "__pycache__" not in p.parts)


@pytest.mark.parametrize("pattern, path, matches", [
    ("pixelrnn_tf/**/*.py", "pixelrnn_tf/models.py", True),
    ("pixelrnn_tf/**/*.py", "pixelrnn_tf/layers/shift.py", True),
    ("pixelrnn_tf/**/*.py", "pixelrnn_tf/layers/shift.pyc", False),
    ("tests/test_*.py", "tests/test_masks.py", True),
    ("tests/test_*.py", "tests/sub/test_masks.py", False),
    ("tests/**", "tests/data/a/b.png", True),
])
def test_glob_matches_as_bazel_does(pattern, path, matches):
  assert glob_matches(pattern, path) == matches


def test_every_package_module_is_in_a_py_library():
  modules = project_files("pixelrnn_tf/**/*.py")
  assert "pixelrnn_tf/__init__.py" in modules
  assert [m for m in modules if not declared("py_library", m)] == []


def test_every_test_module_has_a_py_test():
  modules = project_files("tests/test_*.py")
  assert "tests/test_build_declarations.py" in modules
  assert [m for m in modules if not declared("py_test", m)] == []


def test_build_names_only_existing_files():
  text = re.sub(r"#.*", "", (ROOT / "BUILD").read_text())
  # Globs match what exists; SMOKE_TESTS may name test files not written yet.
  text = re.sub(r"\bglob\(.*?\)|\bSMOKE_TESTS\s*=\s*\[.*?\]", "", text, flags=re.S)
  named = {name for name in STRING.findall(text) if FILE_NAME.fullmatch(name)}
  assert "tools/bazel/pytest_main.py" in named
  assert sorted(name for name in named if not (ROOT / name).is_file()) == []
