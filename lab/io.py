"""Small savers and loaders for stage results (JSON for derivations, NPZ + JSON for experiments)."""

import json
from pathlib import Path
from typing import Any

import numpy as np


def save_json(obj: Any, directory: Path, name: str = "results.json") -> None:
    """Write ``obj`` as indented, key-sorted JSON into ``directory/name``."""
    (directory / name).write_text(json.dumps(obj, indent=1, sort_keys=True))


def load_json(directory: Path, name: str = "results.json") -> Any:
    return json.loads((directory / name).read_text())


def save_arrays(arrays: dict[str, np.ndarray], directory: Path, name: str = "arrays.npz") -> None:
    """Write named arrays into ``directory/name`` (uncompressed NPZ)."""
    np.savez(directory / name, **arrays)


def load_arrays(directory: Path, name: str = "arrays.npz") -> dict[str, np.ndarray]:
    with np.load(directory / name) as f:
        return {k: f[k] for k in f.files}
