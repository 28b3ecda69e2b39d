"""Reading a storage by op name, without the ops' code: ops, versions, pages of calls."""

from __future__ import annotations

import pytest

from mandala_ast import Storage, op
from mandala_ast._errors import StorageClosedError, StorageFormatError, UnknownOpError
from mandala_ast.runtime.catalog import Catalog


def _op_in(module: str, name: str, body):
    body.__module__, body.__qualname__, body.__name__ = module, name, name
    return op(body)


@pytest.fixture
def catalog(tmp_path):
    def scale(x: int, factor: float = 2.0) -> float:
        return x * factor

    first = _op_in("pkg.a", "scale", scale)
    other = _op_in("pkg.b", "scale", lambda x: x)
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        for x in range(5):
            first(x)
        first(1, factor=1)
        other(3)
    storage.close()
    opened = Catalog.open(tmp_path / "s.db")
    yield opened
    opened.close()


def test_ops_by_full_name_and_ambiguous_short_name(catalog):
    assert [op.name for op in catalog.ops()] == ["pkg.a.scale", "pkg.b.scale"]
    assert catalog.find_op("pkg.a.scale").params == ("x", "factor")
    with pytest.raises(UnknownOpError, match="ambiguous: pkg.a.scale, pkg.b.scale"):
        catalog.find_op("scale")
    with pytest.raises(UnknownOpError, match="did you mean 'pkg.a.scale'"):
        catalog.find_op("pkg.a.scal")


def test_pages_in_storage_order_with_limit(catalog):
    calls = catalog.calls(catalog.find_op("pkg.a.scale"), limit=3)
    assert [(c.values["x"], c.values["factor"], c.values["output"]) for c in calls] == [
        (0, 2.0, 0.0), (1, 2.0, 2.0), (2, 2.0, 4.0)]


def test_where_matches_int_and_float_by_content(catalog):
    scale = catalog.find_op("pkg.a.scale")
    assert [c.values["x"] for c in catalog.calls(scale, where={"factor": 1})] == [1]
    assert [c.values["x"] for c in catalog.calls(scale, where={"output": 8})] == [4]
    assert catalog.calls(scale, where={"x": "1"}) == []  # a string is not the int


def test_versions_count_calls(catalog):
    [version] = catalog.versions(catalog.find_op("pkg.a.scale"))
    assert (version.number, version.calls) == (0, 6) and "x * factor" in version.source


def test_missing_file_is_not_created(tmp_path):
    with pytest.raises(StorageFormatError, match="no such storage file"):
        Catalog.open(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_keyword_arguments_of_kwargs_are_columns_of_every_call(tmp_path):
    @op
    def f(a, *rest, k=1, **kw):
        return a + sum(rest) + k + len(kw)

    storage = Storage(tmp_path / "s.db")
    with storage.run():
        f(1, 2, 3, k=2, z=5)
        f(1)
    storage.close()
    catalog = Catalog.open(tmp_path / "s.db")
    try:
        calls = catalog.calls(catalog.find_op("f"))
        assert [list(call.values) for call in calls] == [["a", "*rest", "k", "**z", "output"]] * 2
        assert [call.values["**z"] for call in calls] == [5, None]
        assert [c.values["output"] for c in catalog.calls(catalog.find_op("f"), where={"**z": 5})] == [9]
    finally:
        catalog.close()


def test_a_catalog_used_after_close_is_an_error_naming_the_file(catalog):
    # It kept the connection it was made with: sqlite3's "Cannot operate on a closed database".
    catalog.close()
    with pytest.raises(StorageClosedError, match=str(catalog.store.path)):
        catalog.ops()


def test_a_parameter_added_with_a_default_is_a_column_with_that_default(tmp_path, monkeypatch):
    """Calls stored before `scale: int = 2` was added are the calls with scale=2 (storage.df
    and queries say so); the command line showed them with no scale, and refused
    `--where scale=...`, the op's stored signature predating the parameter."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = tmp_path / "grown.py"
    module.write_text("from mandala_ast import op\n\n@op\ndef f(x: int) -> int:\n    return x * 2\n")
    grown = importlib.import_module("grown")
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        grown.f(1)
    module.write_text("from mandala_ast import op\n\n@op\ndef f(x: int, scale: int = 2) -> int:\n    return x * 2\n")
    importlib.reload(grown)
    with storage.run():
        assert grown.f(1) == 2  # the call stored before the parameter
        grown.f(2, scale=3)
    assert storage.df(grown.f)[["x", "scale"]].values.tolist() == [[1, 2], [2, 3]]
    storage.close()
    catalog = Catalog.open(tmp_path / "s.db")
    try:
        f = catalog.find_op("f")
        assert [(c.values["x"], c.values["scale"]) for c in catalog.calls(f)] == [(1, 2), (2, 3)]
        assert [c.values["x"] for c in catalog.calls(f, where={"scale": 2})] == [1]
        assert [c.values["x"] for c in catalog.calls(f, where={"scale": 3})] == [2]
    finally:
        catalog.close()


def test_an_op_asked_for_by_its_name_before_a_rename_is_named_by_its_new_name(tmp_path):
    """`mandala-ast calls db steps.double` after rename_op said only that no such op exists."""
    old = _op_in("steps", "double", lambda x: 2 * x)
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        old(1)
    storage.rename_op("steps.double", _op_in("shapes", "twice", lambda x: 2 * x))
    storage.rename_op("shapes.twice", _op_in("shapes", "dbl", lambda x: 2 * x))
    storage.close()
    catalog = Catalog.open(tmp_path / "s.db")
    with pytest.raises(UnknownOpError, match=r"no op 'steps.double'.*: it was renamed to shapes.dbl"):
        catalog.find_op("steps.double")
    catalog.close()


def test_an_op_asked_for_by_its_function_name_before_a_rename_is_named_by_its_new_name(tmp_path):
    """`mandala-ast calls db inc` after `rename_op("__main__.inc", increment)` listed the stored
    ops only: the full old name was answered with the new one, the function's name was not."""
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        _op_in("__main__", "inc", lambda x: x + 1)(1)
    storage.rename_op("__main__.inc", _op_in("__main__", "increment", lambda x: x + 1))
    storage.close()
    catalog = Catalog.open(tmp_path / "s.db")
    with pytest.raises(UnknownOpError, match=r"no op 'inc'.*: it was renamed to __main__.increment"):
        catalog.find_op("inc")
    catalog.close()
