"""The public surface is exactly what we mean it to be (httpx's test_exported_members)."""

from __future__ import annotations

import subprocess
import sys

import mandala_ast

PUBLIC = [
    "AmbiguousBlockError",
    "ArgumentError",
    "BatchWorkerError",
    "BlockRefusedError",
    "CorruptValueError",
    "DeleteReport",
    "ExportError",
    "FixtureError",
    "GcReport",
    "HookError",
    "HookHandle",
    "MDict",
    "MList",
    "MSet",
    "MandalaDiagnosticWarning",
    "MandalaError",
    "MandalaFallbackWarning",
    "MandalaImportWarning",
    "MandalaRandomWarning",
    "MandalaRenderWarning",
    "MandalaRepairWarning",
    "MandalaTransientWarning",
    "MandalaUnstoredWarning",
    "MandalaWarning",
    "NewCallError",
    "NotAnOpError",
    "Op",
    "OpRecursionError",
    "OutputCountError",
    "PictureSaveError",
    "Q",
    "QueryError",
    "ReadOnlyStorageError",
    "RenameError",
    "RenderError",
    "Storage",
    "StorageBusyError",
    "StorageClosedError",
    "StorageFormatError",
    "StorageFullError",
    "TransformResult",
    "UnknownColumnError",
    "UnknownOpError",
    "UnloadableValueError",
    "ValueEncodingError",
    "ValuePointer",
    "VerifyReport",
    "VersionChangeError",
    "Workflow",
    "compile_module",
    "install",
    "install_this_package",
    "op",
    "register_type",
    "transform_source",
    "workflow",
]


def test_all_is_sorted_and_exact():
    assert mandala_ast.__all__ == sorted(mandala_ast.__all__) == PUBLIC


def test_every_public_name_resolves_and_is_documented():
    for name in PUBLIC:
        obj = getattr(mandala_ast, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_unknown_attribute_is_an_attribute_error():
    try:
        mandala_ast.nope  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_libcst_or_pandas():
    """A warm import of compiled code must parse nothing, and opening a storage is cheap."""
    code = "import sys, mandala_ast; print('libcst' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_compiled_code_loads_the_query_engine_only_when_it_queries():
    """Every compiled module imports the runtime's compiled-code module; most never query."""
    code = (
        "import sys, mandala_ast.runtime.compiled as rt\n"
        "before = 'mandala_ast.runtime.query.result' in sys.modules\n"
        "rt.q_call\n"
        "print(before, 'mandala_ast.runtime.query.result' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_importing_a_compiled_module_loads_no_storage_machinery():
    """Every compiled module imports the runtime's compiled-code module at its top, storage or
    not: what it needs to record a call comes with the storage (sqlite3, call identities), or
    a warm import of compiled code costs milliseconds more than the plain import."""
    code = (
        "import sys, mandala_ast.runtime.compiled\n"
        "print(*(m in sys.modules for m in ('sqlite3', 'mandala_ast.runtime.identity', 'datetime')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_every_error_and_warning_in_the_readme_table_is_public():
    """A user catches what the README's errors table names: `from mandala_ast import X` works,
    and every public error or warning has its row there."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("## Errors and warnings", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    public = {n for n in mandala_ast.__all__ if n.endswith(("Error", "Warning"))}
    assert rows - public == set(), "named in the README's errors table but not importable"
    assert public - rows - {"MandalaError", "MandalaWarning"} == set(), "public but not in the table"
