"""The compile pipeline: cache files, fail-open rules, compile_module.

The checklist is pytest's ``TestRewriteOnImport`` plus the cache bugs other import hooks
met: stale files served after an edit in the same second, caches that outlive a library
upgrade, read-only ``__pycache__`` directories, and concurrent writers of one cache file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from textwrap import dedent

import pytest

from mandala_ast import compiler

MODULE = "import mandala_ast\nCOMPILED = False\nVALUE = 1\n"
IMPORT = "install('pkg')\nimport pkg.m\nprint(pkg.m.COMPILED, pkg.m.VALUE, compiler.STATS)\n"


@pytest.fixture
def pkg(py):
    """A package `pkg` with a module `pkg.m` in a scratch project."""
    py.write("pkg/__init__.py", "")
    py.write("pkg/m.py", MODULE)
    return py


def stats(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    return eval(proc.stdout.strip().splitlines()[-1].split(" ", 2)[2])


class TestUnits:
    def test_cache_path_names_the_tool_and_key(self):
        path = compiler.cache_path(os.path.join("/src", "pkg", "mod.py"), "0123456789abcdef" * 4)
        tag = sys.implementation.cache_tag
        assert path == os.path.join("/src", "pkg", "__pycache__", f"mod.{tag}-mandala_ast-0123456789ab.pyc")

    def test_cache_path_honours_pycache_prefix(self, monkeypatch, tmp_path):
        monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
        path = compiler.cache_path("/src/pkg/mod.py", "f" * 64)
        assert path.startswith(str(tmp_path)) and "__pycache__" not in path

    def test_key_is_stable_and_covers_the_transform(self, monkeypatch):
        key = compiler.cache_key()
        assert key == compiler.cache_key() and len(key) == 64
        assert compiler.cache_key((("option", "1"),)) != key
        monkeypatch.setattr(compiler, "_transform_override", lambda text, path: None)
        assert compiler.cache_key() != key

    def test_key_does_not_import_libcst_or_metadata(self, py):
        out = py.run(
            "import sys, mandala_ast.compiler as c\nbefore = set(sys.modules)\nc.cache_key()\n"
            "print(sorted(set(sys.modules) - before), 'libcst' in sys.modules)",
            prelude=False,
        ).stdout
        assert out.split() == ["[]", "False"]

    def test_dist_version_reads_dist_info(self):
        import importlib.metadata

        assert compiler._dist_version("libcst") == importlib.metadata.version("libcst")
        assert compiler._dist_version("no-such-dist-xyz") == "unknown"

    @pytest.mark.parametrize(
        ("data", "prefilter", "expected"),
        [
            (b"import mandala_ast", True, True),
            (b"x = 1", True, False),
            (b"x = 1", False, True),
            (b"import mandala_ast  # MANDALA_AST_DONT_COMPILE", False, False),
        ],
    )
    def test_wants_compiling(self, data, prefilter, expected):
        assert compiler.wants_compiling(data, prefilter=prefilter) is expected

    def test_transform_source_is_reexported_lazily(self):
        pytest.importorskip("mandala_ast.transforms", reason="transform not landed")
        transforms = sys.modules["mandala_ast.transforms"]
        if not hasattr(transforms, "transform_source"):
            pytest.skip("transform not landed")
        assert compiler.transform_source is transforms.transform_source


class TestCache:
    def test_second_import_is_a_hit_without_libcst(self, pkg):
        """The warm path costs a read, a hash and marshal.loads: libcst is never imported."""
        first = pkg.run(IMPORT)
        assert stats(first) == {"hits": 0, "misses": 1, "fallbacks": 0}  # empty __init__: skipped
        second = pkg.run(IMPORT + "print('libcst' in sys.modules)")
        assert second.stdout.split()[:2] == ["True", "1"]
        assert second.stdout.split()[-1] == "False"
        assert len(pkg.cached_files()) == 1

    def test_upgrading_mandala_ast_recompiles_instead_of_serving_the_old_cache(self, pkg):
        """A new release may compile the same source differently: its cache files must not be
        the old release's (the key holds the library's version)."""
        pkg.run(IMPORT)
        upgraded = pkg.run("import mandala_ast\nmandala_ast.__version__ = '99.0'\n" + IMPORT)
        assert stats(upgraded) == {"hits": 0, "misses": 1, "fallbacks": 0}
        assert len(pkg.cached_files()) == 2

    def test_an_edited_transform_recompiles_instead_of_serving_the_old_cache(self, pkg):
        """Upgrading mandala_ast's transform, even without a version bump, changes what
        compiled code looks like. A copy of the library stands in for the upgrade."""
        import shutil

        from hookutil import REPO_ROOT

        library = pkg.root / "mandala_ast"
        shutil.copytree(REPO_ROOT / "mandala_ast", library, ignore=shutil.ignore_patterns("__pycache__"))
        pkg.run(IMPORT)
        with open(library / "transforms" / "_lines.py", "a") as source:
            source.write("\n# the next release\n")
        assert stats(pkg.run(IMPORT)) == {"hits": 0, "misses": 1, "fallbacks": 0}
        assert len(pkg.cached_files()) == 2

    def test_cpython_pyc_files_are_untouched(self, pkg):
        pkg.run(IMPORT)
        names = [p.name for p in (pkg.root / "pkg" / "__pycache__").iterdir()]
        assert not [n for n in names if n.startswith("m.") and "mandala_ast" not in n]

    def test_edit_in_same_second_with_same_size(self, pkg):
        """Checked-hash validation catches what mtime+size cannot (pytest #13292)."""
        pkg.run(IMPORT)
        source = pkg.root / "pkg" / "m.py"
        stat = source.stat()
        source.write_text(MODULE.replace("VALUE = 1", "VALUE = 2"))
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert source.stat().st_size == stat.st_size
        assert pkg.run(IMPORT).stdout.split()[:2] == ["True", "2"]

    @pytest.mark.parametrize("damage", ["truncate-header", "truncate-payload", "garbage-payload", "empty"])
    def test_damaged_cache_file_is_ignored_and_replaced(self, pkg, damage):
        pkg.run(IMPORT)
        (pyc,) = [p for p in pkg.cached_files() if p.name.startswith("m.")]
        blob = pyc.read_bytes()
        damaged = {
            "truncate-header": blob[:10],
            "truncate-payload": blob[: len(blob) // 2],
            "garbage-payload": blob[:16] + b"\xff" * 40,
            "empty": b"",
        }[damage]
        pyc.write_bytes(damaged)
        proc = pkg.run(IMPORT)
        assert proc.stdout.split()[:2] == ["True", "1"]
        assert stats(proc)["misses"] == 1
        assert pyc.read_bytes() == blob

    def test_pycache_is_a_file(self, pkg):
        (pkg.root / "pkg" / "__pycache__").write_text("not a directory")
        assert pkg.run(IMPORT).stdout.split()[:2] == ["True", "1"]

    @pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
    def test_pycache_is_readonly(self, pkg):
        cache = pkg.root / "pkg" / "__pycache__"
        cache.mkdir()
        cache.chmod(0o555)
        try:
            assert pkg.run(IMPORT).stdout.split()[:2] == ["True", "1"]
        finally:
            cache.chmod(0o755)

    @pytest.mark.parametrize("errno_name", ["EROFS", "ENOSYS", "EACCES", "EIO"])
    def test_os_errors_are_swallowed(self, pkg, errno_name):
        """Read-only mounts (EROFS/ENOSYS, pytest #12300) and EIO on read (#14112), simulated so
        the test also works as root."""
        pkg.run(IMPORT)  # leave a cache entry, so reads fail too
        proc = pkg.run(dedent(f"""
            import builtins, errno, os
            real_open, real_makedirs = builtins.open, os.makedirs
            def broken(path, *args, **kwargs):
                if "-mandala_ast-" in str(path):
                    raise OSError(errno.{errno_name}, os.strerror(errno.{errno_name}), str(path))
                return real_open(path, *args, **kwargs)
            def no_dirs(path, *args, **kwargs):
                raise OSError(errno.{errno_name}, "no", str(path))
            builtins.open, os.makedirs = broken, no_dirs
        """) + IMPORT)
        assert proc.stdout.split()[:2] == ["True", "1"]

    def test_dont_write_bytecode_still_reads_pycache(self, pkg):
        """-B disables writes beside the sources but not reads (pytest's documented behaviour)."""
        pkg.run(IMPORT)
        assert stats(pkg.run(IMPORT, "-B"))["hits"] == 1
        assert pkg.dir_files() == []

    @pytest.mark.parametrize("switch", [("-B",), ()], ids=["-B", "PYTHONDONTWRITEBYTECODE"])
    def test_without_bytecode_writing_the_second_import_does_not_run_libcst(self, pkg, switch):
        """Docker images often set PYTHONDONTWRITEBYTECODE=1: compiled modules then go to the
        cache directory, and the next process loads them from there without libcst."""
        env = {} if switch else {"PYTHONDONTWRITEBYTECODE": "1"}
        first = pkg.run(IMPORT, *switch, **env)
        assert stats(first)["misses"] == 1
        second = pkg.run(IMPORT + "print('libcst' in sys.modules)", *switch, **env)
        assert "{'hits': 1, 'misses': 0, 'fallbacks': 0}" in second.stdout
        assert second.stdout.split()[-1] == "False"
        assert pkg.cached_files() == [] and len(pkg.dir_files()) == 1

    def test_cache_directory_entry_serves_a_copy_elsewhere_with_true_tracebacks(self, pkg):
        """Entries are keyed by content: a module built in one place (a Docker build stage)
        and run from another is a hit, and its tracebacks name the file where it runs."""
        pkg.write("pkg/m.py", MODULE + "def boom():\n    raise ValueError('boom')\n")
        pkg.run(IMPORT, "-B")
        (pkg.root / "pkg").rename(pkg.root / "moved")
        proc = pkg.run(IMPORT.replace("pkg", "moved") + "moved.m.boom()", "-B", check=False)
        assert "hits': 1" in proc.stdout
        assert f'File "{pkg.root / "moved" / "m.py"}", line 5, in boom' in proc.stderr

    def test_unwritable_pycache_falls_back_to_the_cache_directory(self, pkg):
        (pkg.root / "pkg" / "__pycache__").write_text("not a directory")
        pkg.run(IMPORT)
        assert len(pkg.dir_files()) == 1
        assert stats(pkg.run(IMPORT))["hits"] == 1

    def test_concurrent_processes_share_one_cache_directory_entry(self, pkg):
        """Six processes without bytecode writing compile the same module at once: one whole
        entry is left (temp file + os.replace), and the next process reads it."""
        pkg.write("pkg/m.py", MODULE + "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(300)))
        script = compiler_prelude() + IMPORT
        procs = [
            subprocess.Popen([sys.executable, "-B", "-c", script], cwd=pkg.root, env=pkg.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        assert len(pkg.dir_files()) == 1 and not list(pkg.cache_dir.rglob("*.tmp"))
        assert stats(pkg.run(IMPORT, "-B"))["hits"] == 1

    def test_pycache_prefix(self, pkg, tmp_path_factory):
        prefix = tmp_path_factory.mktemp("prefix")
        pkg.run(IMPORT, "-X", f"pycache_prefix={prefix}")
        assert pkg.cached_files() == []
        assert len(list(prefix.rglob("*-mandala_ast-*.pyc"))) == 1
        assert stats(pkg.run(IMPORT, "-X", f"pycache_prefix={prefix}"))["hits"] == 1

    def test_optimize_level_gets_its_own_entry(self, pkg):
        """-O changes the code (asserts); pytest #66 served the wrong file when it was not keyed."""
        pkg.run(IMPORT)
        pkg.run(IMPORT, "-O")
        assert len(pkg.cached_files()) == 2

    def test_two_processes_write_one_entry(self, pkg):
        """Temp file + os.replace: concurrent writers never leave a partial file (pytest #3008)."""
        pkg.write("pkg/m.py", MODULE + "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(300)))
        script = compiler_prelude() + IMPORT
        procs = [
            subprocess.Popen([sys.executable, "-c", script], cwd=pkg.root, env=pkg.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        assert all(out.split()[:2] == ["True", "1"] for out, _ in outputs)
        assert stats(pkg.run(IMPORT))["hits"] == 1
        assert not list(pkg.root.rglob("*.tmp"))

    def test_threads_of_one_process_write_one_entry(self, pkg):
        """The temp name has the thread id too: pytest's pid-only name can collide."""
        out = pkg.run("""
            import importlib.util, threading
            from mandala_ast.compiler import CompilingLoader, code_for
            data = open("pkg/m.py", "rb").read()
            path = __import__("os").path.abspath("pkg/m.py")
            def work():
                for _ in range(20):
                    code_for(CompilingLoader("pkg.m", path), data, path, "pkg.m")
            threads = [threading.Thread(target=work) for _ in range(4)]
            [t.start() for t in threads]; [t.join() for t in threads]
            print("ok")
        """).stdout
        assert out.strip() == "ok"
        assert not list(pkg.root.rglob("*.tmp"))

    def test_diagnostics_are_replayed_on_a_hit(self, pkg):
        """pytest #8835 lost rewrite warnings on cached runs."""
        pkg.write("pkg/m.py", MODULE + "# DIAG\n")
        first, second = pkg.run(IMPORT), pkg.run(IMPORT)
        for proc in (first, second):
            assert proc.stderr.count("MandalaDiagnosticWarning: stand-in diagnostic") == 1
        assert stats(second)["hits"] == 1


class TestFailOpen:
    def test_transform_error_falls_back_with_one_warning(self, pkg):
        """libcst cannot parse what CPython can (LibCST #989/#993): run uncompiled, warn once."""
        pkg.write("pkg/m.py", MODULE + "# FAIL_TRANSFORM\n")
        for proc in (pkg.run(IMPORT), pkg.run(IMPORT)):  # miss, then hit: same single warning
            assert proc.stdout.split()[:2] == ["False", "1"]
            assert proc.stderr.count("MandalaFallbackWarning") == 1
            assert "'pkg.m'" in proc.stderr and "stand-in cannot parse this" in proc.stderr

    def test_real_libcst_parse_failure(self, pkg):
        """A libcst ParserSyntaxError from the transform is a fallback, not an import error."""
        pkg.run(dedent("""
            import libcst
            def transform(text, path):
                libcst.parse_module("def (:\\n")
            compiler._transform_override = transform
        """) + IMPORT)

    def test_line_drift_falls_back(self, pkg):
        pkg.write("pkg/m.py", MODULE + "# ADD_LINE\n")
        proc = pkg.run(IMPORT)
        assert proc.stdout.split()[0] == "False"
        assert "changed the number of lines" in proc.stderr

    def test_broken_output_falls_back_and_shows_the_line(self, pkg):
        pkg.write("pkg/m.py", MODULE + "BREAK_OUTPUT = 1\n")
        proc = pkg.run(IMPORT)
        assert proc.stdout.split()[0] == "False"
        assert "does not compile" in proc.stderr and "line 4" in proc.stderr

    def test_missing_transform_falls_back(self, pkg):
        proc = pkg.run(dedent("""
            def transform(text, path):
                from mandala_ast.transforms import no_such_function
            compiler._transform_override = transform
        """) + IMPORT)
        assert proc.stdout.split()[0] == "False"
        assert proc.stderr.count("MandalaFallbackWarning: mandala_ast could not compile module 'pkg.m'") == 1

    @pytest.mark.parametrize(
        "source",
        ["import mandala_ast\ndef f(:\n    pass\n", "import mandala_ast\nx = (1,\n", "import mandala_ast\n\tx = 1\n"],
    )
    def test_syntax_error_is_reported_as_python_reports_it(self, pkg, source):
        pkg.write("pkg/m.py", source)
        report = "\n".join([
            "try:", "    import pkg.m", "except SyntaxError as e:",
            "    import traceback",
            "    print(repr((type(e).__name__, e.msg, e.filename, e.lineno, e.offset, e.text)))",
            "    print(e.__context__ is None, e.__cause__ is None)",
            "    print(''.join(traceback.format_exception_only(e)))",
        ])
        plain = pkg.run(report, prelude=False).stdout
        hooked = pkg.run("install('pkg')\n" + report)
        assert hooked.stdout == plain
        assert "MandalaFallbackWarning" not in hooked.stderr


def compiler_prelude() -> str:
    from hookutil import PRELUDE

    return PRELUDE


class TestCompileModule:
    def test_from_path(self, py):
        path = py.write("script_mod.py", MODULE)
        out = py.run(f"""
            from mandala_ast.compiler import compile_module
            mod = compile_module({str(path)!r})
            print(mod.__name__, mod.COMPILED, sys.modules["script_mod"] is mod, mod.__file__ == {str(path)!r})
        """).stdout
        assert out.split() == ["script_mod", "True", "True", "True"]

    def test_a_file_inside_a_package_is_named_as_import_names_it(self, pkg):
        # Named by its stem ("flow"), its relative imports raised "attempted relative import
        # with no known parent package", and its ops were other ops than the imported ones.
        pkg.write("pkg/sub/__init__.py", "")
        pkg.write("pkg/sub/flow.py", "from ..m import VALUE\nfrom mandala_ast import op\n\n\n"
                                     "@op\ndef f(x):\n    return x + VALUE\n")
        out = pkg.run("""
            from mandala_ast.compiler import compile_module
            mod = compile_module("pkg/sub/flow.py")
            import pkg.sub.flow
            print(mod.__name__, mod.f.name, pkg.sub.flow is mod, compile_module("pkg/sub/").__name__)
        """).stdout
        assert out.split() == ["pkg.sub.flow", "pkg.sub.flow.f", "True", "pkg.sub"]

    def test_from_module_name_with_name(self, pkg):
        out = pkg.run("""
            from mandala_ast.compiler import compile_module
            import pkg
            mod = compile_module("pkg.m")
            other = compile_module("pkg.m", name="renamed")
            print(mod.COMPILED, pkg.m is mod, other.__name__, sys.modules["renamed"] is other)
        """).stdout
        assert out.split() == ["True", "True", "renamed", "True"]

    def test_package_directory(self, pkg):
        pkg.write("pkg/__init__.py", "COMPILED = False\nfrom . import m\n")
        out = pkg.run("""
            from mandala_ast.compiler import compile_module
            mod = compile_module("pkg/")
            print(mod.COMPILED, mod.__path__[0].endswith("pkg"))
        """).stdout
        assert out.split() == ["True", "True"]

    def test_uses_the_cache(self, pkg):
        code = "from mandala_ast.compiler import compile_module\ncompile_module('pkg/m.py')\nprint(compiler.STATS)"
        pkg.run(code)
        assert "'hits': 1" in pkg.run(code).stdout

    @pytest.mark.parametrize(
        ("target", "error"), [("no_such_module_xyz", ModuleNotFoundError), ("missing.py", FileNotFoundError)]
    )
    def test_not_found(self, py, target, error):
        with pytest.raises(error):
            compiler.compile_module(str(py.root / target) if target.endswith(".py") else target)

    def test_not_python_source(self):
        with pytest.raises(ImportError, match="not a Python source"):
            compiler.compile_module("_sqlite3")

    def test_failed_module_is_not_left_in_sys_modules(self, py):
        path = py.write("explodes.py", "raise RuntimeError('at import')\n")
        proc = py.run(f"""
            from mandala_ast.compiler import compile_module
            try:
                compile_module({str(path)!r})
            except RuntimeError:
                print("explodes" in sys.modules)
        """)
        assert proc.stdout.strip() == "False"

    def test_syntax_error(self, py):
        path = py.write("broken.py", "def f(:\n")
        with pytest.raises(SyntaxError) as info:
            compiler.compile_module(path, name="broken_for_test")
        assert info.value.lineno == 1 and info.value.filename == str(path)
        assert "broken_for_test" not in sys.modules


class TestClearCache:
    def test_clears_only_ours(self, pkg):
        pkg.run(IMPORT)
        pkg.run("import pkg.m", prelude=False)  # CPython's own pyc (PYTHONDONTWRITEBYTECODE unset)
        ours = len(pkg.cached_files())
        assert compiler.clear_cache(pkg.root) == ours == 1
        assert pkg.cached_files() == []
        assert list((pkg.root / "pkg" / "__pycache__").glob("*.pyc"))  # CPython's stay


def _real_transform_available() -> bool:
    try:
        from mandala_ast.transforms import transform_source  # noqa: F401
    except ImportError:
        return False
    return True


FLOW = """
import contextlib
from mandala_ast import op

@op
def inc(x: int) -> int:
    return x + 1

class Storage:  # a stand-in: these tests are about compiling; the runtime has its own tests
    def run(self):
        return contextlib.nullcontext()

def main():
    storage = Storage()
    with storage.run():
        y = inc(1)
        z = inc(y)
    return y, z
"""
DENSE_HEAD = """from mandala_ast import op

@op
def load(seed, size):
    return [seed] * size

@op
def train(*args, **kwargs):
    return len(args)
"""
DENSE_FUNCTION = """
def experiment_{i}(storage, seeds, alpha=0.1):
    \"\"\"Train and evaluate model family {i} on each seed; keep the best.\"\"\"
    scores = []
    with storage.run():
        for seed in seeds:
            dataset = load(seed, size={i} + 10)
            model = train(dataset, alpha=alpha, family={i})
            score = train(model, dataset)
            scores.append(score)
        best = train(scores)
    return best
"""
REAL_IMPORT = """
import sys, warnings
warnings.simplefilter("always")
import mandala_ast.compiler as compiler
from mandala_ast.hook import install
install("proj")
import proj.flow
print(proj.flow.main(), compiler.STATS, "libcst" in sys.modules)
"""


@pytest.mark.skipif(not _real_transform_available(), reason="transform not landed")
class TestRealTransform:
    @pytest.fixture
    def proj(self, py):
        py.write("proj/__init__.py", "")
        py.write("proj/flow.py", FLOW)
        return py

    def test_cold_then_warm(self, proj):
        """The real transform rewrites the block; the warm import is a hit without libcst."""
        cold = proj.run(REAL_IMPORT, prelude=False)
        assert cold.stdout.strip() == "(2, 3) {'hits': 0, 'misses': 1, 'fallbacks': 0} True"
        warm = proj.run(REAL_IMPORT, prelude=False)
        assert warm.stdout.strip() == "(2, 3) {'hits': 1, 'misses': 0, 'fallbacks': 0} False"
        assert "Warning" not in cold.stderr + warm.stderr

    def test_compiled_source_is_line_stable(self, proj):
        """What `show` prints has the original's line count, and untouched lines are identical."""
        from mandala_ast.compiler import transform_source

        result = transform_source(FLOW, "flow.py")
        assert result.changed
        old, new = FLOW.splitlines(), result.source.splitlines()
        assert len(old) == len(new)
        assert [i for i, (a, b) in enumerate(zip(old, new)) if a != b] == [1, 15, 16]

    @pytest.mark.parametrize("shape", ["binop", "elif"])
    def test_libcst_failure_falls_back_with_one_warning(self, proj, shape):
        """Code CPython compiles but the transform cannot handle (deep nesting) still runs."""
        body = {
            "binop": "        w = " + "+".join(["1"] * 400) + "\n",
            "elif": "        if y == 0: w = 0\n" + "".join(f"        elif y == {i}: w = {i}\n" for i in range(1, 400)),
        }[shape]
        proj.write("proj/flow.py", FLOW.replace("    return y, z\n", body + "    return y, z\n"))
        for proc in (proj.run(REAL_IMPORT, prelude=False), proj.run(REAL_IMPORT, prelude=False)):
            assert proc.stdout.startswith("(2, 3)")
            assert proc.stderr.count("MandalaFallbackWarning") == 1

    def test_syntax_error_with_real_transform(self, proj):
        proj.write("proj/flow.py", FLOW + "def broken(:\n    pass\n")
        proc = proj.run(REAL_IMPORT, prelude=False, check=False)
        assert proc.returncode == 1
        assert proc.stderr.rstrip().endswith("SyntaxError: invalid syntax")
        assert "During handling" not in proc.stderr and "MandalaFallbackWarning" not in proc.stderr

    @pytest.mark.skipif(sys.version_info < (3, 11), reason="no column markers before 3.11")
    def test_traceback_on_a_rewritten_line_has_no_misplaced_markers(self, proj):
        """The rewritten line's columns pointed past the end of the line shown (a row of
        blanks where the ^^^ markers belong); untouched lines keep their markers."""
        failing = FLOW.replace("        z = inc(y)\n", "        z = inc(y) + inc(y) / 0\n        w = [y][2]\n")
        proj.write("proj/flow.py", failing.replace("    return y, z\n", "    return y, z, w\n"))
        script = REAL_IMPORT.replace("print(proj.flow.main(), compiler.STATS, \"libcst\" in sys.modules)", "proj.flow.main()")
        for proc in (proj.run(script, prelude=False, check=False), proj.run(script, prelude=False, check=False)):
            assert proc.stderr.endswith(
                'flow.py", line 17, in main\n    z = inc(y) + inc(y) / 0\nZeroDivisionError: division by zero\n'
            ), proc.stderr
        proj.write("proj/flow.py", failing.replace("inc(y) / 0", "inc(y)").replace("    return y, z\n", "    return y, z, w\n"))
        proc = proj.run(script, prelude=False, check=False)
        assert proc.stderr.endswith('line 18, in main\n    w = [y][2]\n        ~~~^^^\nIndexError: list index out of range\n'), proc.stderr

    def test_call_dense_module_pyc_is_at_most_1_5x_cpythons(self, proj):
        """Every rewritten call costs bytecode and a constant spec: a module of blocks full of
        op calls was 1.8x CPython's .pyc (3.11; 2.1x on 3.12), more to load on every import."""
        proj.write("proj/flow.py", DENSE_HEAD + "".join(DENSE_FUNCTION.format(i=i) for i in range(30)))
        proj.run("import py_compile\npy_compile.compile('proj/flow.py', doraise=True)\n"
                 "from mandala_ast.hook import install\ninstall('proj')\nimport proj.flow", prelude=False)
        (ours,) = proj.cached_files()
        (plain,) = set((proj.root / "proj" / "__pycache__").glob("flow.*.pyc")) - {ours}
        assert ours.stat().st_size <= 1.5 * plain.stat().st_size

    def test_compile_module(self, proj):
        out = proj.run("""
            from mandala_ast.compiler import compile_module
            mod = compile_module("proj/flow.py", name="flow_standalone")
            print(mod.main(), "__mandala_rt__" in vars(mod))
        """, prelude=False).stdout
        assert out.strip() == "(2, 3) True"
