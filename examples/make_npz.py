"""Write an example ``.npz`` data source: ``python examples/make_npz.py [out.npz] [n_train] [n_test]``.

The archive holds the keys the report reads (``X_train``, ``Y_train``, ``X_test``, ``Y_test``,
each of shape (rows, d)); here they are drawn from :mod:`examples.notebook_data`, standing in
for arrays saved from the course notebook, e.g. ``np.savez("data.npz", X_train=..., ...)``.
Then name it in ``settings.toml``: ``[data] source = "examples/notebook_data.npz"``.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_data import draw


def write(path: Path, n_train: int = 200, n_test: int = 1000) -> Path:
    """Training and test arrays from independent seeds, written to ``path``."""
    X_train, Y_train, _ = draw(n_train, seed=1)
    X_test, Y_test, _ = draw(n_test, seed=2)
    np.savez(path, X_train=X_train, Y_train=Y_train, X_test=X_test, Y_test=Y_test)
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    out = Path(args[0]) if args else Path(__file__).with_name("notebook_data.npz")
    print(f"wrote {write(out, *map(int, args[1:3]))}")
