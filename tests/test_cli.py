"""The ``mandala-ast`` command: run, show, cache clear, cache show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hookutil import REPO_ROOT

from mandala_ast import cli

SCRIPT = """
import sys
import mandala_ast
import helper
COMPILED = False
print(__name__, sys.argv, sys.path[0] == SCRIPT_DIR, COMPILED, helper.COMPILED)
"""


def mandala_ast(py, *args: str, standin: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter (optionally with the stand-in transform)."""
    setup = "import _standin, mandala_ast.compiler as c\nc._transform_override = _standin.transform\n"
    code = (setup if standin else "") + f"from mandala_ast.cli import main\nsys.exit(main({list(args)!r}))\n"
    return py.run("import sys\n" + code, prelude=False, check=False)


@pytest.fixture
def project(py):
    py.write("helper.py", "import mandala_ast\nCOMPILED = False\n")
    py.write("script.py", SCRIPT.replace("SCRIPT_DIR", repr(str(py.root))))
    return py


class TestRun:
    def test_runs_like_python_with_modules_compiled(self, project):
        proc = mandala_ast(project, "run", "script.py", "a", "--flag")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "__main__ ['script.py', 'a', '--flag'] True True True"

    def test_exception_shows_original_lines_and_exits_1(self, project):
        project.write("fails.py", "import mandala_ast\nCOMPILED = False\n\ndef f():\n    return 1 / 0\n\nf()\n")
        proc = mandala_ast(project, "run", "fails.py")
        assert proc.returncode == 1
        plain = subprocess.run([sys.executable, "fails.py"], cwd=project.root, capture_output=True, text=True)
        assert proc.stderr.endswith(plain.stderr)  # same traceback: no frames of ours
        assert "cli.py" not in proc.stderr
        assert 'fails.py", line 5, in f\n    return 1 / 0' in proc.stderr

    def test_syntax_error_is_reported_as_python_does(self, project):
        project.write("bad.py", "x = 1\ndef f(:\n    pass\n")
        proc = mandala_ast(project, "run", "bad.py")
        plain = subprocess.run([sys.executable, "bad.py"], cwd=project.root, capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (1, plain.stderr)

    def test_system_exit_code_propagates(self, project):
        project.write("exits.py", "import sys\nsys.exit(7)\n")
        assert mandala_ast(project, "run", "exits.py").returncode == 7

    def test_missing_script(self, project):
        proc = mandala_ast(project, "run", "nope.py")
        assert proc.returncode == 2 and "can't open file" in proc.stderr

    def test_works_when_the_transform_is_broken(self, project):
        """Fail open: the script runs uncompiled, with a warning per module."""
        project.write("script.py", SCRIPT.replace("SCRIPT_DIR", repr(str(project.root))) + "# FAIL_TRANSFORM\n")
        proc = mandala_ast(project, "run", "script.py")
        assert proc.returncode == 0
        assert proc.stdout.split()[-2:] == ["False", "True"]
        assert proc.stderr.count("MandalaFallbackWarning") == 1

    def test_main_module_is_picklable_by_reference(self, project):
        """sys.modules['__main__'] is the script, as under `python script.py`."""
        project.write("pick.py", "import pickle, sys\ndef f(): pass\nprint(pickle.loads(pickle.dumps(f)) is f)\n")
        proc = mandala_ast(project, "run", "pick.py")
        assert proc.stdout.strip() == "True", proc.stderr

    def test_console_script(self, project):
        """The installed `mandala-ast` entry point, beside the interpreter running the tests."""
        exe = Path(sys.executable).parent / "mandala-ast"
        assert exe.exists(), "install the package (pip install -e .) to get the console script"
        proc = subprocess.run([str(exe), "run", "script.py"], cwd=project.root, env=project.env(),
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("__main__ ['script.py'] True")


class TestShow:
    def test_prints_the_transformed_source(self, project):
        proc = mandala_ast(project, "show", "helper.py")
        assert (proc.returncode, proc.stdout) == (0, "import mandala_ast\nCOMPILED = True\n")

    def test_diff(self, project):
        proc = mandala_ast(project, "show", "helper.py", "--diff")
        assert proc.returncode == 0
        assert "-COMPILED = False\n+COMPILED = True\n" in proc.stdout
        assert proc.stdout.startswith("--- helper.py\n+++ helper.py (compiled)\n")

    def test_failure_is_an_error_message(self, project):
        project.write("nope.py", "# FAIL_TRANSFORM\n")
        proc = mandala_ast(project, "show", "nope.py")
        assert proc.returncode == 1 and "stand-in cannot parse this" in proc.stderr

    def test_a_missing_file_is_named_without_a_python_error(self, tmp_path, capsys):
        """`mandala-ast show missing.py` printed a raw `FileNotFoundError: [Errno 2] ...`."""
        missing = tmp_path / "missing.py"
        assert cli.main(["show", str(missing)]) == 1  # as the storage commands' missing file
        assert capsys.readouterr().err == f"mandala-ast show: {missing}: no such file\n"

    def test_a_file_with_a_syntax_error_is_reported_as_python_reports_it(self, tmp_path, capsys):
        """It printed libcst's parse error (a token list, a line the file does not have)."""
        broken = tmp_path / "broken.py"
        broken.write_text("import mandala_ast\nwith storage.run():\n    y = f(1\n")
        assert cli.main(["show", str(broken)]) == 1
        assert capsys.readouterr().err == f"mandala-ast show: {broken}: line 3: SyntaxError: '(' was never closed\n"

    def test_a_directory_is_named_without_a_python_error(self, tmp_path, capsys):
        assert cli.main(["show", str(tmp_path)]) == 1
        assert capsys.readouterr().err == f"mandala-ast show: {tmp_path}: is a directory, not a file\n"

    def test_real_transform(self, project):
        """With the real transform: a module without ops is byte-for-byte unchanged."""
        project.write("plain.py", "x = 1  # comment\n")
        proc = mandala_ast(project, "show", "plain.py", standin=False)
        assert (proc.returncode, proc.stdout) == (0, "x = 1  # comment\n"), proc.stderr


class TestCacheClear:
    def test_reports_the_count(self, project):
        mandala_ast(project, "run", "script.py")
        assert len(project.cached_files()) == 2  # script.py and helper.py
        proc = mandala_ast(project, "cache", "clear")
        assert proc.stdout.strip() == f"Removed 2 cached file(s) under {project.root}"
        assert project.cached_files() == []

    def test_path_argument(self, project, tmp_path_factory):
        other = tmp_path_factory.mktemp("other")
        mandala_ast(project, "run", "script.py")
        proc = mandala_ast(project, "cache", "clear", str(other))
        assert proc.stdout.startswith("Removed 0 cached file(s)")
        assert len(project.cached_files()) == 2


def _cache_dir_run(project, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with bytecode writing off, as in a Docker image with PYTHONDONTWRITEBYTECODE=1."""
    setup = "import _standin, mandala_ast.compiler as c\nc._transform_override = _standin.transform\n"
    code = setup + f"from mandala_ast.cli import main\nsys.exit(main({list(args)!r}))\n"
    return project.run("import sys\n" + code, prelude=False, check=False, PYTHONDONTWRITEBYTECODE="1")


class TestCacheDirectory:
    def test_show_names_the_directory_and_counts_entries(self, project):
        _cache_dir_run(project, "run", "script.py")
        proc = _cache_dir_run(project, "cache", "show")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0] == f"cache directory: {project.cache_dir} ($MANDALA_AST_CACHE_DIR)"
        assert lines[1].startswith("entries: 2, ")
        assert lines[2].endswith("off: compiled modules are cached only in the cache directory")

    def test_clear_dir_empties_it_and_leaves_other_files(self, project):
        _cache_dir_run(project, "run", "script.py")
        project.cache_dir.joinpath("notes.txt").write_text("the user's own file")
        proc = _cache_dir_run(project, "cache", "clear", "--dir")
        assert proc.stdout.strip() == f"Removed 2 cached file(s) from the cache directory {project.cache_dir}"
        assert project.dir_files() == [] and project.cache_dir.joinpath("notes.txt").exists()

    def test_clear_without_dir_points_at_the_cache_directory(self, project):
        """With bytecode writing off, `cache clear` alone finds nothing: it says where to look."""
        _cache_dir_run(project, "run", "script.py")
        proc = _cache_dir_run(project, "cache", "clear")
        assert proc.stdout.splitlines() == [
            f"Removed 0 cached file(s) under {project.root}",
            f"(2 more in the cache directory {project.cache_dir}: `mandala-ast cache clear --dir`)",
        ]

    def test_clear_dir_with_a_path_is_a_usage_error(self, project):
        proc = _cache_dir_run(project, "cache", "clear", "somewhere", "--dir")
        assert proc.returncode == 2 and "not both" in proc.stderr


class TestHelp:
    @pytest.mark.parametrize("command", [[], ["run"], ["show"], ["cache"], ["cache", "clear"], ["cache", "show"]])
    def test_every_command_has_help(self, command, capsys):
        with pytest.raises(SystemExit) as info:
            cli.main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: mandala-ast" in capsys.readouterr().out

    def test_subcommands_are_described(self):
        text = cli.build_parser().format_help()
        for name in ("run", "show", "cache"):
            assert f"    {name} " in text

    def test_entry_point_is_declared(self):
        tomllib = pytest.importorskip("tomllib")
        pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
        assert pyproject["project"]["scripts"]["mandala-ast"] == "mandala_ast.cli:main"

    def test_no_command_is_an_error(self, capsys):
        with pytest.raises(SystemExit) as info:
            cli.main([])
        assert info.value.code == 2

