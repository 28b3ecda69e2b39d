"""Quickstart: a ridge-regression sweep, memoized with mandala_ast.

Run it twice:

    mandala-ast run examples/quickstart.py

The first run computes every fit; the second loads everything from examples/quickstart.db and
computes nothing. Delete that file to start over.
"""

import time
from pathlib import Path

import numpy as np

from mandala_ast import Storage, op

COMPUTED: list[str] = []  # op bodies append here, so we can tell computing from loading


@op
def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A linear-regression problem with n samples and 20 features."""
    COMPUTED.append(f"make_data(n={n})")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20))
    y = X @ rng.normal(size=20) + rng.normal(scale=1.0, size=n)
    return X, y


@op
def fit_ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Closed-form ridge regression (the sleep stands in for a slow model)."""
    COMPUTED.append(f"fit_ridge(alpha={alpha})")
    time.sleep(0.05)
    return np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ y)


@op
def r2_score(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    COMPUTED.append("r2_score")
    residual = y - X @ w
    return float(1 - residual.var() / y.var())


def main() -> None:
    storage = Storage(Path(__file__).with_name("quickstart.db"))
    started = time.perf_counter()
    with storage.run():
        for n in [200, 2000]:
            X, y = make_data(n)
            for alpha in [0.1, 1.0, 10.0, 100.0]:
                w = fit_ridge(X, y, alpha=alpha)
                score = r2_score(w, X, y)
                if score > 0.95:  # `score` is a plain float here: no unwrapping, ever
                    print(f"  good fit: n={n:<5} alpha={alpha:<6} R^2={score:.4f}")
    elapsed = time.perf_counter() - started

    if COMPUTED:
        print(f"computed {len(COMPUTED)} calls in {elapsed:.2f} s: {', '.join(COMPUTED[:4])}, ...")
    else:
        print(f"computed nothing: every call loaded from {storage.path.name} in {elapsed:.3f} s")
    print("\nfit_ridge's table (storage.df(fit_ridge)):")
    print(storage.df(fit_ridge)[["alpha", "version", "duration_s", "created_at"]].to_string())

    # The same code again, as a query: nothing runs, the stored calls it describes come back as
    # a table whose columns are the variables (the `if` only guards a print, so no row is lost).
    with storage.query() as q:
        for n in [200, 2000]:
            X, y = make_data(n)
            for alpha in [0.1, 1.0, 10.0, 100.0]:
                w = fit_ridge(X, y, alpha=alpha)
                score = r2_score(w, X, y)
                if score > 0.95:
                    print(f"  good fit: n={n:<5} alpha={alpha:<6} R^2={score:.4f}")
    print("\nthe same code as a query (q.df('n', 'alpha', 'score')):")
    print(q.df("n", "alpha", "score").to_string())


if __name__ == "__main__":
    main()
