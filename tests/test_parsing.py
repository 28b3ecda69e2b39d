"""The runtime's parses of Python text (parsing.py), with threads parsing at once."""

from __future__ import annotations

import gc
import threading
import time

from mandala_ast.runtime import parsing

SOURCE = "\n".join(
    f"def f{i}(x):\n    return [((x + {i}) * 2, {{'a': [x, (x, x)]}}) for x in range({i})]" for i in range(300)
)


def test_code_parsed_in_two_threads_at_once_never_raises_ast_constructor_recursion_depth_mismatch():
    """Python 3.11 counts the depth of the tree being built in state its threads share: two
    op calls fingerprinting code at once (one paused mid-tree by a garbage collection that ran
    Python code) raised 'SystemError: AST constructor recursion depth mismatch' out of an op
    call. Here a collection switches threads often, as a busy process's may."""
    errors: list[SystemError] = []

    def parse_again_and_again() -> None:
        for _ in range(15):
            try:
                parsing.parse(SOURCE)
            except SystemError as error:
                errors.append(error)
                return

    def switch(phase: str, info: dict) -> None:
        time.sleep(0)  # another thread's turn, mid-collection

    threshold = gc.get_threshold()
    gc.callbacks.append(switch)
    gc.set_threshold(50, 5, 5)
    try:
        threads = [threading.Thread(target=parse_again_and_again) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.callbacks.remove(switch)
        gc.set_threshold(*threshold)
    assert errors == []


def test_a_literal_is_read_as_ast_literal_eval_reads_it():
    assert parsing.literal(" {'a': (1, 2.5)}") == {"a": (1, 2.5)}
