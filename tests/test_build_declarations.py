"""The Bazel BUILD file declares every package and test module, and names no missing file.

BUILD is read with a tiny Starlark evaluator (Python's `ast` over the subset BUILD uses:
literals, names, `+`, `%`, slices, string methods, list comprehensions, `glob`, rule calls), so
these tests need no Bazel. They fail when:
- a `pixelrnn_tf/**/*.py` module is in no `py_library`'s srcs,
- a `tests/test_*.py` module is in no `py_test`'s srcs,
- BUILD names, in srcs / main / data, a file that does not exist,
- a `:label` in deps names no target, or two targets share a name.
The checker itself is tested on synthetic trees that break each rule.
"""

import ast
import os
import re
from pathlib import Path

import pytest

# Resolve symlinks: under `bazel test` this file is a runfiles symlink into the source tree, and
# the checks must look at the real tree, not at the files Bazel already chose to declare.
ROOT = Path(__file__).resolve().parents[1]

PY_RULES = ("py_library", "py_binary", "py_test")
# Attributes whose plain strings are file paths (labels start with ':', '//' or '@').
FILE_ATTRS = ("srcs", "main", "data")
# BUILD-level functions that declare nothing the checks look at.
IGNORED_CALLS = ("load", "package", "exports_files", "licenses")


class BuildEvalError(Exception):
    """BUILD uses a construct the tiny evaluator does not understand."""


class Rule:
    def __init__(self, kind, attrs, lineno):
        self.kind = kind
        self.attrs = attrs
        self.lineno = lineno

    @property
    def name(self):
        return self.attrs.get("name")

    def files(self, attr):
        value = self.attrs.get(attr)
        if value is None:
            return []
        values = [value] if isinstance(value, str) else list(value)
        return [v for v in values if not v.startswith((":", "//", "@"))]

    def __repr__(self):
        return "%s(name=%r) at BUILD:%d" % (self.kind, self.name, self.lineno)


# ---------------------------------------------------------------------------------------------
# File tree and globs


def read_bazelignore(root):
    path = Path(root) / ".bazelignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def package_files(root):
    """Relative paths of the files in the root package, as Bazel's glob sees them.

    Skips .git, symlinked directories (bazel-* convenience links), directories listed in
    .bazelignore, and sub-packages (directories with their own BUILD file or WORKSPACE).
    """
    root = Path(root)
    ignored = set(read_bazelignore(root)) | {".git"}
    files = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        kept = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else rel_dir + "/" + d
            full = Path(dirpath) / d
            if rel in ignored or full.is_symlink():
                continue
            if any((full / marker).exists() for marker in ("BUILD", "BUILD.bazel", "WORKSPACE")):
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in filenames:
            files.add(f if rel_dir == "." else rel_dir + "/" + f)
    return files


def _segment_regex(segment):
    out = []
    for ch in segment:
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def glob_regex(pattern):
    """Bazel glob pattern -> compiled regex over '/'-separated relative paths."""
    segments = pattern.split("/")
    out = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            out.append(".+" if last else "(?:[^/]+/)*")
        else:
            out.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z")


def glob(files, include, exclude=()):
    inc = [glob_regex(p) for p in include]
    exc = [glob_regex(p) for p in exclude]
    return sorted(
        f for f in files if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)
    )


# ---------------------------------------------------------------------------------------------
# Tiny Starlark evaluator

_STR_METHODS = (
    "endswith", "format", "join", "lower", "lstrip", "replace", "rsplit", "rstrip", "split",
    "startswith", "strip", "upper",
)
_BUILTINS = {"len": len, "sorted": sorted, "str": str, "list": list, "dict": dict}


class _Evaluator:
    def __init__(self, files):
        self.files = files
        self.env = {}
        self.rules = []

    def run(self, text):
        try:
            tree = ast.parse(text, filename="BUILD")
        except SyntaxError as e:
            raise BuildEvalError("BUILD does not parse: %s" % e) from e
        for stmt in tree.body:
            if isinstance(stmt, ast.Expr):
                self.eval(stmt.value, self.env)
            elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                  and isinstance(stmt.targets[0], ast.Name)):
                self.env[stmt.targets[0].id] = self.eval(stmt.value, self.env)
            else:
                self.fail(stmt, "unsupported statement %s" % type(stmt).__name__)
        return self.rules

    @staticmethod
    def fail(node, message):
        raise BuildEvalError("BUILD:%d: %s" % (getattr(node, "lineno", 0), message))

    def eval(self, node, env):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            self.fail(node, "unsupported expression %s" % type(node).__name__)
        return method(node, env)

    def _Constant(self, node, env):
        return node.value

    def _List(self, node, env):
        return [self.eval(e, env) for e in node.elts]

    def _Tuple(self, node, env):
        return tuple(self.eval(e, env) for e in node.elts)

    def _Dict(self, node, env):
        return {self.eval(k, env): self.eval(v, env) for k, v in zip(node.keys, node.values)}

    def _Name(self, node, env):
        if node.id in env:
            return env[node.id]
        if node.id in self.env:
            return self.env[node.id]
        self.fail(node, "unknown name %r" % node.id)

    def _BinOp(self, node, env):
        left, right = self.eval(node.left, env), self.eval(node.right, env)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            return left % right
        self.fail(node, "unsupported operator %s" % type(node.op).__name__)

    def _UnaryOp(self, node, env):
        value = self.eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub):
            return -value
        self.fail(node, "unsupported operator %s" % type(node.op).__name__)

    def _BoolOp(self, node, env):
        if isinstance(node.op, ast.And):
            return all(self.eval(v, env) for v in node.values)
        return any(self.eval(v, env) for v in node.values)

    def _Compare(self, node, env):
        ops = {ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
               ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}
        left = self.eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators):
            if type(op) not in ops:
                self.fail(node, "unsupported comparison %s" % type(op).__name__)
            right = self.eval(comparator, env)
            if not ops[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node, env):
        return self.eval(node.body if self.eval(node.test, env) else node.orelse, env)

    def _Subscript(self, node, env):
        value = self.eval(node.value, env)
        index = node.slice
        if isinstance(index, ast.Slice):
            bounds = [None if b is None else self.eval(b, env)
                      for b in (index.lower, index.upper, index.step)]
            return value[slice(*bounds)]
        return value[self.eval(index, env)]

    def _ListComp(self, node, env):
        results = []

        def loop(generators, scope):
            if not generators:
                results.append(self.eval(node.elt, scope))
                return
            gen = generators[0]
            if not isinstance(gen.target, ast.Name):
                self.fail(node, "only `for NAME in ...` comprehensions are supported")
            for item in self.eval(gen.iter, scope):
                inner = dict(scope, **{gen.target.id: item})
                if all(self.eval(cond, inner) for cond in gen.ifs):
                    loop(generators[1:], inner)

        loop(node.generators, dict(env))
        return results

    def _Call(self, node, env):
        args = [self.eval(a, env) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                self.fail(node, "**kwargs are not supported")
            kwargs[kw.arg] = self.eval(kw.value, env)
        func = node.func
        if isinstance(func, ast.Attribute):
            obj = self.eval(func.value, env)
            if isinstance(obj, str) and func.attr in _STR_METHODS:
                return getattr(obj, func.attr)(*args, **kwargs)
            self.fail(node, "unsupported method %r" % func.attr)
        if not isinstance(func, ast.Name):
            self.fail(node, "unsupported call")
        if func.id == "glob":
            include = args[0] if args else kwargs.get("include", [])
            exclude = args[1] if len(args) > 1 else kwargs.get("exclude", [])
            return glob(self.files, include, exclude)
        if func.id in _BUILTINS:
            return _BUILTINS[func.id](*args, **kwargs)
        if func.id == "select":
            self.fail(node, "select() is not supported by this checker")
        if func.id in IGNORED_CALLS:
            return None
        if args:
            self.fail(node, "rule %s() called with positional arguments" % func.id)
        self.rules.append(Rule(func.id, kwargs, node.lineno))
        return None


def evaluate_build(text, files):
    """Evaluates BUILD text over a set of relative file paths; returns its rules."""
    return _Evaluator(set(files)).run(text)


# ---------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty when all is well)


def undeclared_modules(rules, files):
    declared = {f for r in rules if r.kind == "py_library" for f in r.files("srcs")}
    return ["%s is in no py_library's srcs" % f for f in sorted(glob(files, ["pixelrnn_tf/**/*.py"]))
            if f not in declared]


def undeclared_tests(rules, files):
    declared = {f for r in rules if r.kind == "py_test" for f in r.files("srcs")}
    return ["%s is in no py_test's srcs" % f for f in sorted(glob(files, ["tests/test_*.py"]))
            if f not in declared]


def missing_files(rules, files, root=None):
    """Files named in srcs / main / data that do not exist.

    Given `root`, existence is checked on disk: like Bazel, an explicit name may point into a
    directory that .bazelignore hides from globs (tools/bazel/pytest_main.py does).
    """
    problems = []
    for rule in rules:
        for attr in FILE_ATTRS:
            for f in rule.files(attr):
                exists = (Path(root) / f).exists() if root is not None else f in files
                if not exists:
                    problems.append("%r names %s = %r, which does not exist" % (rule, attr, f))
    return problems


def bad_labels(rules):
    problems = []
    names = [r.name for r in rules]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append("more than one target is named %r" % name)
    for rule in rules:
        for dep in rule.attrs.get("deps", []):
            if dep.startswith(":") and dep[1:] not in names:
                problems.append("%r depends on %s, which BUILD does not define" % (rule, dep))
    return problems


def check_build(text, files):
    rules = evaluate_build(text, files)
    return (undeclared_modules(rules, files) + undeclared_tests(rules, files)
            + missing_files(rules, files) + bad_labels(rules))


# ---------------------------------------------------------------------------------------------
# The project's own BUILD


@pytest.fixture(scope="module")
def project():
    build = ROOT / "BUILD"
    if not build.exists():
        pytest.fail("no BUILD file at %s" % ROOT)
    files = package_files(ROOT)
    return evaluate_build(build.read_text(), files), files


def test_every_package_module_is_in_a_py_library(project):
    rules, files = project
    problems = undeclared_modules(rules, files)
    assert not problems, "\n".join(problems)


def test_every_test_module_has_a_py_test(project):
    rules, files = project
    problems = undeclared_tests(rules, files)
    assert not problems, "\n".join(problems)


def test_build_names_only_existing_files(project):
    rules, files = project
    problems = missing_files(rules, files, root=ROOT)
    assert not problems, "\n".join(problems)


def test_labels_resolve_and_names_are_unique(project):
    rules, _ = project
    problems = bad_labels(rules)
    assert not problems, "\n".join(problems)


def test_each_py_test_runs_its_own_module(project):
    rules, files = project
    for rule in rules:
        if rule.kind == "py_test" and "tools/bazel/pytest_main.py" in rule.files("srcs"):
            modules = [f for f in rule.files("srcs") if f.startswith("tests/")]
            assert rule.attrs.get("args") == modules, rule


def test_smoke_tag_marks_existing_smoke_modules(project):
    rules, files = project
    smoke = {f for r in rules if r.kind == "py_test" and "smoke" in r.attrs.get("tags", [])
             for f in r.files("srcs") if f.startswith("tests/")}
    assert "tests/test_build_declarations.py" in smoke
    assert smoke <= files


def test_stand_in_repositories_exist_and_are_ignored():
    workspace = (ROOT / "WORKSPACE").read_text()
    paths = re.findall(r'local_repository\([^)]*?path\s*=\s*"([^"]+)"', workspace, re.S)
    assert paths, "WORKSPACE declares no local_repository stand-ins"
    ignored = read_bazelignore(ROOT)
    assert ".venv" in ignored
    for path in paths:
        assert (ROOT / path / "WORKSPACE").exists(), path
        assert any(path == i or path.startswith(i + "/") for i in ignored), path


# ---------------------------------------------------------------------------------------------
# The checker on synthetic trees

TREE = {
    "pixelrnn_tf/__init__.py",
    "pixelrnn_tf/models.py",
    "pixelrnn_tf/layers/__init__.py",
    "pixelrnn_tf/layers/masked.py",
    "tests/test_masks.py",
    "tests/conftest.py",
    "train.py",
}

GOOD_BUILD = '''
SMOKE = ["tests/test_masks.py", "tests/test_not_written_yet.py"]
py_library(name = "pixelrnn_tf", srcs = glob(["pixelrnn_tf/**/*.py"]))
py_binary(name = "train", srcs = ["train.py"], deps = [":pixelrnn_tf"])
[
    py_test(
        name = src[len("tests/"):-len(".py")],
        srcs = ["%s" % src],
        data = glob(["tests/**"]),
        tags = ["smoke"] if src in SMOKE else [],
        deps = [":pixelrnn_tf"],
    )
    for src in glob(["tests/test_*.py"])
]
'''


def test_checker_accepts_a_complete_build():
    assert check_build(GOOD_BUILD, TREE) == []
    rules = evaluate_build(GOOD_BUILD, TREE)
    test = [r for r in rules if r.kind == "py_test"]
    assert [(r.name, r.attrs["tags"]) for r in test] == [("test_masks", ["smoke"])]


def test_checker_reports_a_module_no_glob_covers():
    build = GOOD_BUILD.replace('glob(["pixelrnn_tf/**/*.py"])', 'glob(["pixelrnn_tf/*.py"])')
    assert check_build(build, TREE) == [
        "pixelrnn_tf/layers/__init__.py is in no py_library's srcs",
        "pixelrnn_tf/layers/masked.py is in no py_library's srcs",
    ]


def test_checker_reports_a_module_left_out_of_explicit_srcs():
    build = GOOD_BUILD.replace(
        'glob(["pixelrnn_tf/**/*.py"])',
        '["pixelrnn_tf/__init__.py", "pixelrnn_tf/layers/__init__.py", "pixelrnn_tf/layers/masked.py"]',
    )
    assert check_build(build, TREE) == ["pixelrnn_tf/models.py is in no py_library's srcs"]


def test_checker_reports_a_module_excluded_from_the_glob():
    build = GOOD_BUILD.replace(
        'glob(["pixelrnn_tf/**/*.py"])',
        'glob(["pixelrnn_tf/**/*.py"], exclude = ["pixelrnn_tf/models.py"])',
    )
    assert check_build(build, TREE) == ["pixelrnn_tf/models.py is in no py_library's srcs"]


def test_checker_reports_a_test_module_without_py_test():
    build = GOOD_BUILD.replace('glob(["tests/test_*.py"])', '["tests/test_masks.py"]')
    assert check_build(build, TREE | {"tests/test_new.py"}) == [
        "tests/test_new.py is in no py_test's srcs",
    ]


def test_checker_reports_named_files_that_do_not_exist():
    build = GOOD_BUILD + (
        'py_binary(name = "score", srcs = ["pixelrnn_tf/score.py"], '
        'main = "pixelrnn_tf/score.py", deps = [":pixelrnn_tf"])\n'
    )
    problems = check_build(build, TREE)
    assert problems == [
        "py_binary(name='score') at BUILD:15 names srcs = 'pixelrnn_tf/score.py', "
        "which does not exist",
        "py_binary(name='score') at BUILD:15 names main = 'pixelrnn_tf/score.py', "
        "which does not exist",
    ]
    assert check_build(build, TREE | {"pixelrnn_tf/score.py"}) == []


def test_checker_reports_missing_train_py_and_bad_labels():
    problems = check_build(GOOD_BUILD.replace(':pixelrnn_tf"]', ':pixelrn"]', 1),
                           TREE - {"train.py"})
    assert problems == [
        "py_binary(name='train') at BUILD:4 names srcs = 'train.py', which does not exist",
        "py_binary(name='train') at BUILD:4 depends on :pixelrn, which BUILD does not define",
    ]


def test_checker_reports_duplicate_target_names():
    build = GOOD_BUILD + 'py_binary(name = "train", srcs = ["train.py"])\n'
    assert check_build(build, TREE) == ["more than one target is named 'train'"]


def test_checker_rejects_what_it_cannot_evaluate():
    with pytest.raises(BuildEvalError, match="unsupported statement FunctionDef"):
        evaluate_build("def f():\n    pass\n", TREE)
    with pytest.raises(BuildEvalError, match="unknown name 'UNDEFINED'"):
        evaluate_build('py_library(name = "x", srcs = UNDEFINED)\n', TREE)


@pytest.mark.parametrize(
    "pattern, path, matches",
    [
        ("pixelrnn_tf/**/*.py", "pixelrnn_tf/a.py", True),
        ("pixelrnn_tf/**/*.py", "pixelrnn_tf/layers/deep/b.py", True),
        ("pixelrnn_tf/**/*.py", "pixelrnn_tf/layers/b.pyc", False),
        ("pixelrnn_tf/**/*.py", "other/pixelrnn_tf/a.py", False),
        ("tests/test_*.py", "tests/test_masks.py", True),
        ("tests/test_*.py", "tests/sub/test_masks.py", False),
        ("tests/test_*.py", "tests/conftest.py", False),
        ("tests/**", "tests/data/x.png", True),
        ("tests/**", "tests", False),
        ("train.py", "train.py", True),
        ("train.py", "xtrain.py", False),
    ],
)
def test_glob_regex(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) == matches


def test_package_files_skips_ignored_dirs_subpackages_and_symlinks(tmp_path):
    for rel in ["BUILD", "pixelrnn_tf/a.py", ".venv/lib/x.py", "tools/bazel/r/WORKSPACE",
                "sub/BUILD", "sub/b.py", ".git/HEAD"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / ".bazelignore").write_text(".venv\ntools/bazel\n")
    (tmp_path / "bazel-out").symlink_to(tmp_path / "pixelrnn_tf")
    assert package_files(tmp_path) == {"BUILD", ".bazelignore", "pixelrnn_tf/a.py"}


def test_missing_files_checks_the_disk_when_given_a_root(tmp_path):
    # Like Bazel, a name in BUILD may point into a .bazelignore'd folder that globs skip.
    (tmp_path / "tools/bazel").mkdir(parents=True)
    (tmp_path / "tools/bazel/main.py").write_text("")
    (tmp_path / ".bazelignore").write_text("tools/bazel\n")
    build = 'py_test(name = "t", srcs = ["tools/bazel/main.py", "tests/test_gone.py"])\n'
    files = package_files(tmp_path)
    rules = evaluate_build(build, files)
    assert missing_files(rules, files, root=tmp_path) == [
        "py_test(name='t') at BUILD:1 names srcs = 'tests/test_gone.py', which does not exist",
    ]
