"""``storage.why`` explains a miss by what changed (explaining.py)."""

from __future__ import annotations

from mandala_ast import Storage, op


def _pair(x: int):  # one function, decorated with and without nout=
    return (x, x + 1)


def test_why_after_nout_changed_says_the_output_count_changed_not_never_computed(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        op(_pair)(1)
    why = str(storage.why(op(nout=2)(_pair), 1))
    assert why.startswith("miss") and "never computed" not in why
    assert "had 1 output(s); it has 2 now (nout= changed)" in why


def test_why_after_nout_was_taken_off_again_says_so(tmp_path):
    storage = Storage(tmp_path / "s.db")
    with storage.run():
        op(nout=2)(_pair)(1)
    why = str(Storage(tmp_path / "s.db").why(op(_pair), 1))
    assert "had 2 output(s); it has 1 now (nout= changed)" in why and "version=" not in why
