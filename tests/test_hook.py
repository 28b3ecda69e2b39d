"""The import hook: which modules it takes, how it composes with other finders, its handle.

Everything that touches ``sys.meta_path`` runs in a fresh interpreter (the ``py`` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from mandala_ast import hook
from mandala_ast._errors import HookError
from mandala_ast.compiler import TRANSFORMING

MODULE = """
import mandala_ast
COMPILED = False

def boom():
    x = 1
    raise ValueError("boom")
"""


class TestInstall:
    def test_uninstall_is_idempotent(self, py):
        """uninstall() twice is fine; the finder leaves sys.meta_path with the last handle."""
        out = py.run("""
            from mandala_ast.hook import MandalaFinder, installed
            a, b = install("pkg"), install()
            print(type(sys.meta_path[0]).__name__, installed())
            a.uninstall(); a.uninstall()
            print(installed(), a.active, b.active)
            b.uninstall(); b.uninstall()
            print(installed(), any(isinstance(f, MandalaFinder) for f in sys.meta_path))
        """).stdout.split("\n")
        assert out[:3] == ["MandalaFinder ()", "() False True", "None False"]

    def test_with_block_scopes_the_hook(self, py):
        """Inside the block modules are compiled; after it, new imports are not."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/a.py", MODULE)
        py.write("pkg/b.py", MODULE)
        out = py.run("""
            with install("pkg") as handle:
                import pkg.a
            import pkg.b
            print(pkg.a.COMPILED, pkg.b.COMPILED, handle.active)
        """).stdout
        assert out.split() == ["True", "False", "False"]

    @pytest.mark.parametrize("name", ["os", "json.decoder", "libcst", "pytest", "mandala_ast", "1bad", ""])
    def test_rejects_names_it_never_compiles(self, name):
        """stdlib, itself, libcst and pytest are never compiled; bad names are errors."""
        with pytest.raises(ValueError):
            hook.install(name)

    def test_install_this_package_outside_a_package(self):
        """From a module without __package__ (a script), the error says what to do instead."""
        globals_ = {"__name__": "__main__", "__package__": None, "install_this_package": hook.install_this_package}
        with pytest.raises(HookError, match="mandala-ast run"):
            exec("install_this_package()", globals_)

    def test_install_this_package_from_init(self, py):
        """Submodules are compiled; the package being initialised causes no warning."""
        py.write("app/__init__.py", """
            from mandala_ast.hook import install_this_package
            HANDLE = install_this_package()
            from . import ops
        """)
        py.write("app/ops.py", "COMPILED = False\n")
        proc = py.run("""
            import app
            print(app.ops.COMPILED, app.HANDLE.packages)
        """)
        assert proc.stdout.split() == ["True", "('app',)"]
        assert "MandalaImportWarning" not in proc.stderr

    def test_warns_once_about_modules_imported_before(self, py):
        """pytest's _warn_already_imported / typeguard #260: one warning naming the modules."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/a.py", MODULE)
        py.write("pkg/b.py", MODULE)
        proc = py.run("""
            import pkg.a, pkg.b
            install("pkg")
            install()
        """)
        assert proc.stderr.count("MandalaImportWarning") == 2
        assert "not compiled: pkg, pkg.a, pkg.b" in proc.stderr
        assert "not compiled: pkg.a, pkg.b\n" in proc.stderr  # all-mode: only mentioning sources

    def test_all_mode_warning_names_modules_holding_mandala_ast_objects(self, py):
        """All-mode install() no longer reads every loaded module's file (16-50 ms with pandas
        loaded): modules holding mandala_ast or one of its names are reported, unless opted out."""
        py.write("aliased.py", "import mandala_ast as ma\n")
        py.write("named.py", "from mandala_ast import op\n")
        py.write("optout.py", "# MANDALA_AST_DONT_COMPILE\nimport mandala_ast\n")
        py.write("plain.py", "import os\n")
        proc = py.run("import aliased, named, optout, plain\ninstall()\n")
        assert "not compiled: aliased, named\n" in proc.stderr

    def test_install_loads_neither_the_compiler_nor_threading(self, py):
        """install() must cost well under a millisecond: the compiler, blake3 and threading
        are loaded by the first module that is actually compiled."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/m.py", MODULE)
        out = py.run("""
            import mandala_ast, sys
            mandala_ast.install("pkg")
            print(sorted({"mandala_ast.compiler", "blake3", "threading"} & set(sys.modules)))
            import pkg.m
            print(type(pkg.m.__loader__).__name__, "mandala_ast.compiler" in sys.modules)
        """, prelude=False).stdout.splitlines()
        assert out == ["[]", "CompilingLoader True"]

    def test_invalidates_caches_and_goes_first(self, py):
        """A module created after the first import attempt is found once the hook is installed."""
        proc = py.run("""
            import pathlib
            try:
                import late
            except ImportError:
                pass
            pathlib.Path("late.py").write_text("COMPILED = False\\n")
            install("late")
            import late
            print(late.COMPILED, type(sys.meta_path[0]).__name__)
        """)
        assert proc.stdout.split() == ["True", "MandalaFinder"]


class TestWhichModules:
    def test_all_mode_compiles_only_sources_mentioning_mandala_ast(self, py):
        """No packages: a bytes prefilter; other modules keep CPython's normal path."""
        py.write("uses.py", "import mandala_ast\nCOMPILED = False\n")
        py.write("plain.py", "COMPILED = False\n")
        out = py.run("""
            install()
            import uses, plain
            print(uses.COMPILED, type(uses.__loader__).__name__)
            print(plain.COMPILED, type(plain.__loader__).__name__, len(_standin.CALLS))
        """).stdout.splitlines()
        assert out == ["True CompilingLoader", "False CompilingLoader 1"]

    def test_explicit_package_compiles_every_module(self, py):
        """Named packages are compiled even where the source never names mandala_ast."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/plain.py", "COMPILED = False\n")
        out = py.run("install('pkg')\nimport pkg.plain\nprint(pkg.plain.COMPILED)").stdout
        assert out.strip() == "True"

    def test_opt_out_marker(self, py):
        """MANDALA_AST_DONT_COMPILE in the source opts a module out (like PYTEST_DONT_REWRITE)."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/m.py", '"""MANDALA_AST_DONT_COMPILE"""\nCOMPILED = False\n')
        out = py.run("install('pkg')\nimport pkg.m\nprint(pkg.m.COMPILED, len(_standin.CALLS))").stdout
        assert out.split() == ["False", "0"]

    def test_denied_modules_are_never_looked_up(self):
        """The deny-list is checked before delegating: no filesystem work for the stdlib."""
        finder = hook.MandalaFinder()
        finder.all_modules = True
        assert finder.find_spec("json") is None  # and not in sys.meta_path: nothing to delegate to
        assert hook.denied("__editable___mandala_ast_0_1_0_finder")
        assert not hook.denied("myproject")

    def test_reentrancy_guard(self):
        """While transforming (libcst imports lazily) the finder declines everything (#3506)."""
        finder = hook.MandalaFinder()
        finder.packages = ("pkg",)
        token = TRANSFORMING.set(True)
        try:
            assert finder.find_spec("pkg.mod") is None
        finally:
            TRANSFORMING.reset(token)


class TestComposition:
    def test_zip_import_passes_through(self, py):
        """zipimport specs are not SourceFileLoader specs: returned unchanged."""
        with zipfile.ZipFile(py.root / "lib.zip", "w") as archive:
            archive.writestr("zpkg/__init__.py", "")
            archive.writestr("zpkg/m.py", MODULE)
        out = py.run("""
            sys.path.insert(0, "lib.zip")
            install("zpkg")
            import zpkg.m
            print(zpkg.m.COMPILED, type(zpkg.m.__loader__).__name__)
        """).stdout
        assert out.split() == ["False", "zipimporter"]

    def test_namespace_package_passes_through(self, py):
        py.write("nspkg/m.py", "COMPILED = False\n")
        out = py.run("install('nspkg')\nimport nspkg.m\nprint(nspkg.m.COMPILED, nspkg.__spec__.origin)").stdout
        assert out.split() == ["True", "None"]

    def test_custom_meta_path_finder_specs_are_wrapped(self, py):
        """Editable-install finders build plain SourceFileLoader specs themselves (beartype #556)."""
        py.write("elsewhere/edpkg/__init__.py", "COMPILED = False\n")
        out = py.run("""
            import importlib.util
            class EditableFinder:
                def find_spec(self, name, path=None, target=None):
                    if name == "edpkg":
                        return importlib.util.spec_from_file_location(
                            name, "elsewhere/edpkg/__init__.py", submodule_search_locations=[])
            sys.meta_path.append(EditableFinder())
            install("edpkg")
            import edpkg
            print(edpkg.COMPILED)
        """).stdout
        assert out.strip() == "True"

    def test_other_loaders_are_not_wrapped(self, py):
        """A finder with its own loader (like pytest's rewriter) keeps it."""
        py.write("own.py", "COMPILED = False\n")
        out = py.run("""
            import importlib.machinery, importlib.util
            class OwnLoader(importlib.machinery.SourceFileLoader):
                pass
            class OwnFinder:
                def find_spec(self, name, path=None, target=None):
                    if name == "own":
                        return importlib.util.spec_from_file_location(name, "own.py", loader=OwnLoader(name, "own.py"))
            sys.meta_path.insert(0, OwnFinder())
            install("own")
            import own
            print(own.COMPILED, type(own.__loader__).__name__, type(sys.meta_path[0]).__name__)
        """).stdout
        assert out.split() == ["False", "OwnLoader", "MandalaFinder"]

    def test_pytest_assertion_rewriting_survives(self, pytester, monkeypatch):
        """Test modules keep pytest's rewriting; helper modules are compiled (typeguard #230)."""
        from hookutil import REPO_ROOT, STANDIN_TRANSFORM

        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(REPO_ROOT)]))
        monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)

        pytester.makepyfile(_standin=STANDIN_TRANSFORM)
        pytester.makeconftest("""
            import mandala_ast.compiler as compiler, _standin
            compiler._transform_override = _standin.transform
            from mandala_ast.hook import install
            HANDLE = install()
        """)
        pytester.makepyfile(helper="import mandala_ast\nCOMPILED = False\n")
        pytester.makepyfile(test_it="""
            import mandala_ast
            import helper
            COMPILED = False

            def test_helper_is_compiled():
                assert helper.COMPILED is True
                assert type(helper.__loader__).__name__ == "CompilingLoader"

            def test_rewritten():
                assert type(__loader__).__name__ == "AssertionRewritingHook"
                x = 2
                assert x == 3
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*assert 2 == 3*"])  # introspection: rewriting applied


class TestCompiledModules:
    def test_traceback_and_getsource_show_original_lines(self, py):
        """Line-stable output + the real path: tracebacks and inspect see the user's file."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/m.py", MODULE)
        proc = py.run("""
            import inspect, traceback
            install("pkg")
            import pkg.m
            print(pkg.m.COMPILED)
            print(inspect.getsource(pkg.m.boom), end="")
            try:
                pkg.m.boom()
            except ValueError:
                traceback.print_exc(file=sys.stdout)
        """)
        out = proc.stdout
        assert out.startswith("True\ndef boom():\n    x = 1\n")
        assert f'File "{py.root / "pkg" / "m.py"}", line 7, in boom\n    raise ValueError("boom")' in out

    def test_import_time_traceback_has_no_hook_frames(self, py):
        """get_code is overridden, not exec_module, so importlib trims its frames (typeguard #340)."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/bad.py", "import mandala_ast\nCOMPILED = False\n1 / 0\n")
        proc = py.run("install('pkg')\nimport pkg.bad", check=False)
        assert proc.returncode == 1
        assert 'bad.py", line 3, in <module>\n    1 / 0' in proc.stderr
        assert "compiler.py" not in proc.stderr and "hook.py" not in proc.stderr

    def test_reload_recompiles(self, py):
        py.write("pkg/__init__.py", "")
        py.write("pkg/m.py", "COMPILED = False\nVALUE = 1\n")
        out = py.run("""
            import importlib, pathlib
            install("pkg")
            import pkg.m
            pathlib.Path("pkg/m.py").write_text("COMPILED = False\\nVALUE = 2\\n")
            importlib.reload(pkg.m)
            print(pkg.m.COMPILED, pkg.m.VALUE)
        """).stdout
        assert out.split() == ["True", "2"]

    def test_python_dash_m(self, py):
        """`python -m pkg.tool` runs __main__ through runpy; modules it imports are compiled."""
        py.write("pkg/__init__.py", "")
        py.write("pkg/m.py", "COMPILED = False\n")
        py.write("sitecustomize.py", PRELUDE_SITE)
        py.write("pkg/tool.py", "import pkg.m\nprint(pkg.m.COMPILED)\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pkg.tool"], cwd=py.root, env=py.env(), capture_output=True, text=True
        )
        assert proc.stdout.strip() == "True", proc.stderr


PRELUDE_SITE = """
import mandala_ast.compiler, _standin
mandala_ast.compiler._transform_override = _standin.transform
import mandala_ast.hook
mandala_ast.hook.install("pkg")
"""
