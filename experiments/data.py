"""The data of both computer assignments: the built-in process, or the student's own source.

The course notebook is not available, so the built-in process (a fixed teacher network with
Gaussian label noise, R_t = tau^2) is defined explicitly in :mod:`experiments.data_process`.

A student with the notebook names it in ``settings.toml`` (``[data] source``) instead; see
:class:`DataSource`.  The experiments carry the source in their ``Config.data``, draw with
:func:`draw`, take R_t from :func:`noise_variance` and store :func:`summary`'s facts, from which
:func:`experiments.data_plot.context` fills ``templates/sections/data_source.tex.j2``.
An npz source's noise variance comes from :mod:`experiments.gamma_test`.  torch is imported
inside the functions that draw, so that a stage's configuration imports without it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import math
import numbers
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.data_process import DataProcess, make_data, optimal_test_error, teacher
from experiments.gamma_test import GAMMA_MAX_ROWS, GAMMA_NEIGHBOURS, gamma_test

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parent.parent  # the project root: relative data paths start here


# --- Bring your own data ------------------------------------------------------------------------

KINDS = ("builtin", "callable", "npz")
SPLITS = ("train", "test", "val")
NPZ_KEYS = ("X_train", "Y_train", "X_test", "Y_test")  # required; X_val, Y_val optional (both or neither)
NPZ_OPTIONAL = ("X_val", "Y_val")
PROBE_ROWS = 5  # rows the callable is asked for when it is checked
PROBE_CALLS = 4  # seed 0 twice and once in a fresh process, seed 1 once (see _probe)
LARGEST = 1e15  # largest magnitude accepted in the data: squared errors of larger values lose all precision
# Configuration fields that say how many rows of a split an experiment draws (the check before a run).
ROW_FIELDS = {"n_train": "train", "rank_samples": "train", "n_test": "test", "n_val": "val"}


class DataError(ValueError):
    """A data source that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class DataSource:
    """Where an experiment's data come from: JSON-serialisable, part of each stage's cache key.

    ``kind`` "builtin": :func:`make_data`.  "callable": ``spec`` is ``module:function`` (importable
    from the project root) or ``path/file.py:function``, a function ``f(n, seed) -> (X, Y,
    noise_variance)``.  "npz": ``spec`` is the archive's path with the arrays of ``NPZ_KEYS``.
    Paths are relative to the project root.  ``digest`` is the SHA-256 of the callable's module
    source or of the archive, so a changed content changes the cache key.
    """

    kind: str = "builtin"
    spec: str = ""
    digest: str = ""


Split = tuple[np.ndarray, np.ndarray]


def as_source(source: DataSource | Mapping[str, str]) -> DataSource:
    """``source`` itself, or the :class:`DataSource` of its dict form (as shard specs carry it)."""
    return source if isinstance(source, DataSource) else DataSource(**source)


def _path(spec: str) -> Path:
    path = Path(spec)
    return path if path.is_absolute() else ROOT / path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec_of(path: Path) -> str:
    """``path`` relative to the project root when it lies inside it, as named or once links are resolved
    (the cache key then holds no home directory); else absolute, and the report names it by
    :func:`shown`."""
    plain = Path(os.path.normpath(path.absolute()))
    if plain.is_relative_to(ROOT) and plain.exists() and plain.samefile(path):
        return str(plain.relative_to(ROOT))
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shown(source: DataSource) -> str:
    """``source`` as the report names it: a file outside the project by its name alone (with
    ``source.digest``, which the report prints too, it is identified without a path of this machine).

    >>> shown(DataSource("npz", "/home/ada/secret/data.npz", "ab"))
    'data.npz'
    >>> shown(DataSource("callable", "examples/draw.py:draw", "ab"))
    'examples/draw.py:draw'
    """
    file, colon, function = (
        source.spec.rpartition(":") if source.kind == "callable" else (source.spec, "", "")
    )
    return f"{Path(file).name if Path(file).is_absolute() else file}{colon}{function}"


def resolve(text: str, root: Path = ROOT, run: bool = True) -> DataSource:
    """The :class:`DataSource` named by ``text`` (the settings' ``[data] source``), checked.

    Relative paths are taken from ``root``.  A source that cannot be used is one :class:`DataError`.
    A callable is called to check it (:func:`_probe`) only with ``run``; without, its file is only read
    and hashed (listing the tasks never runs the user's code).
    """
    text = text.strip()
    if text in ("", "builtin"):
        return DataSource()
    if text.endswith(".npz"):
        path = Path(text) if Path(text).is_absolute() else root / text
        if not path.is_file():
            raise DataError(f"no such file: {path}")
        source = DataSource("npz", _spec_of(path), _digest(path))
        _splits(source)
        return source
    module, colon, function = text.rpartition(":")
    if not (colon and module and function.isidentifier()):
        raise DataError(
            f"{text!r} is not a data source; expected 'builtin', 'module:function', "
            "'path/to/file.py:function' or 'path/to/file.npz'"
        )
    if module.endswith(".py"):
        path = Path(module) if Path(module).is_absolute() else root / module
        if not path.is_file():
            raise DataError(f"{text}: no such file: {path}")
        spec = f"{_spec_of(path)}:{function}"
    else:
        spec, path = text, _module_file(module, text)
    source = DataSource("callable", spec, _digest(path))
    if run:
        print(
            f"checking the data source {shown(source)}: calling it {PROBE_CALLS} times with {PROBE_ROWS} rows"
            " (once in a fresh process)",
            file=sys.stderr,
        )
        _probe(source)
    return source


def _module_file(module: str, text: str) -> Path:
    """The source file of ``module``: the project's own without importing anything, else the import
    system's (which imports a dotted name's parent packages)."""
    local = ROOT.joinpath(*module.split("."))
    for candidate in (local.with_suffix(".py"), local / "__init__.py"):
        if candidate.is_file():
            return candidate
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as err:
        raise DataError(f"{text}: module {module!r} not found ({err})") from err
    if found is None or found.origin is None or not Path(found.origin).is_file():
        raise DataError(f"{text}: module {module!r} not found (searched the project root and sys.path)")
    return Path(found.origin)


def _current(source: DataSource) -> None:
    """An error when the file behind ``source`` changed after its digest was taken."""
    path = _path(source.spec.rpartition(":")[0] if source.kind == "callable" else source.spec)
    if source.kind == "callable" and not source.spec.rpartition(":")[0].endswith(".py"):
        path = _module_file(source.spec.rpartition(":")[0], source.spec)
    if not path.is_file() or _digest(path) != source.digest:
        raise DataError(f"{source.spec} changed since the settings were read; build again")


@cache
def _function(source: DataSource) -> Callable[..., Any]:
    module, _, name = source.spec.rpartition(":")
    try:
        if module.endswith(".py"):
            spec = importlib.util.spec_from_file_location(f"data_source_{source.digest[:12]}", _path(module))
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = loaded
            spec.loader.exec_module(loaded)
        else:
            _module_file(module, source.spec)
            loaded = importlib.import_module(module)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{source.spec}: importing {module} raised {type(err).__name__}: {err}") from err
    function = getattr(loaded, name, None)
    if not callable(function):
        raise DataError(f"{source.spec}: module {module} has no function {name!r}")
    return function


def _is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (there is none unless a source imported torch)."""
    return "torch" in sys.modules and isinstance(value, sys.modules["torch"].Tensor)


def _matrix(where: str, value: Any, rows: int | None = None) -> np.ndarray:
    """``value`` as a finite real 2-D float64 array, or a :class:`DataError` naming what is wrong."""
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where} is not an array ({type(value).__name__}: {err})") from err
    if array.dtype.kind not in "fiu":
        raise DataError(f"{where} has dtype {array.dtype}; expected real numbers (a float or integer array)")
    if array.ndim != 2:
        raise DataError(f"{where} has shape {array.shape}; expected (n, d), one row per sample")
    if array.shape[0] == 0:
        raise DataError(f"{where} has no rows")
    if rows is not None and array.shape[0] != rows:
        raise DataError(f"{where} has {array.shape[0]} rows; expected {rows} (one per sample asked for)")
    if not np.isfinite(array).all():
        raise DataError(f"{where} contains NaN or infinite values")
    if (largest := float(np.abs(array).max())) > LARGEST:
        raise DataError(
            f"{where} has values up to {largest:.3g}; scale it to at most {LARGEST:.0e} in magnitude"
        )
    if array.shape[0] > 1 and (array == array[0]).all():
        raise DataError(f"{where} is constant (every row the same): there is nothing to learn or to compare")
    return array.astype(np.float64)


def _pair(where: str, X: Any, Y: Any, rows: int | None = None, names: tuple[str, str] = ("X", "Y")) -> Split:
    """``X`` and ``Y`` checked as one split; ``names`` name them in errors (e.g. X_train and Y_train)."""
    x, y = names
    X, Y = _matrix(f"{where} {x}", X, rows), _matrix(f"{where} {y}", Y, rows)
    if X.shape[0] != Y.shape[0]:
        raise DataError(f"{where} {x} has {X.shape[0]} rows but {y} has {Y.shape[0]}")
    dim = DataProcess().dim
    if X.shape[1] != dim or Y.shape[1] != dim:
        raise DataError(
            f"{where} {x} has {X.shape[1]} columns and {y} has {Y.shape[1]}; expected {dim} each "
            f"(the assignment's g: R^{dim} -> R^{dim}, which the networks and the report assume)"
        )
    return X, Y


def _call(source: DataSource, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``f(n, seed)`` of a callable source, checked: (X, Y) of n rows each and the noise variance."""
    where = f"{source.spec}({n}, {seed})"
    try:
        out = _function(source)(n, seed)
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{where} raised {type(err).__name__}: {err}") from err
    if not (isinstance(out, tuple | list) and len(out) == 3):
        got = (
            f"a {type(out).__name__} of length {len(out)}"
            if isinstance(out, tuple | list)
            else type(out).__name__
        )
        raise DataError(f"{where} returned {got}; expected a tuple (X, Y, noise_variance)")
    X, Y = _pair(f"{where} returned", out[0], out[1], rows=n)
    variance = out[2]
    if (isinstance(variance, np.ndarray) or _is_tensor(variance)) and variance.ndim == 0:
        variance = variance.item()
    if isinstance(variance, bool) or not isinstance(variance, numbers.Real) or not 0 <= variance < math.inf:
        raise DataError(f"{where} returned noise variance {variance!r}; expected a finite number >= 0")
    return X, Y, float(variance)


def _probe(source: DataSource) -> float:
    """Call the source as the experiments will and check it is a function of (n, seed); its noise variance."""
    X, Y, variance = _call(source, PROBE_ROWS, 0)
    X2, Y2, _ = _call(source, PROBE_ROWS, 0)
    if not (np.array_equal(X, X2) and np.array_equal(Y, Y2)):
        raise DataError(
            f"{source.spec} returned different data for the same seed; draw from a generator seeded "
            "by its seed argument, e.g. numpy.random.default_rng(seed)"
        )
    if _fresh_fingerprint(source) != _fingerprint(X, Y):
        raise DataError(
            f"{source.spec} returned other data for seed 0 in another process; its output must depend on"
            " (n, seed) alone (is it seeded from os.urandom, the clock or the process id?)"
        )
    X3, _, other = _call(source, PROBE_ROWS, 1)
    if np.array_equal(X, X3):
        raise DataError(
            f"{source.spec} returned the same X for seeds 0 and 1; each seed must draw a new sample"
        )
    if other != variance:
        raise DataError(
            f"{source.spec} returned noise variances {variance} and {other}; it must not depend on the seed"
        )
    return variance


def _fingerprint(X: np.ndarray, Y: np.ndarray) -> str:
    return hashlib.sha256(X.tobytes() + Y.tobytes()).hexdigest()


_FRESH = """
import json, sys
from experiments.data import PROBE_ROWS, _call, _fingerprint, as_source
X, Y, _ = _call(as_source(json.loads(sys.argv[1])), PROBE_ROWS, 0)
print(_fingerprint(X, Y))
"""


def _fresh_fingerprint(source: DataSource) -> str:
    """The :func:`_fingerprint` of ``source(PROBE_ROWS, 0)`` called in a new interpreter."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-c", _FRESH, json.dumps(asdict(source))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": path},
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DataError(f"{source.spec}: calling it in a fresh process failed: {last}")
    return done.stdout.strip().splitlines()[-1]


@cache
def _splits(source: DataSource) -> dict[str, Split]:
    """The (X, Y) arrays of an npz source by split, checked (without X_val the validation split is the test split)."""
    path = _path(source.spec)
    if not zipfile.is_zipfile(path):
        raise DataError(f"{source.spec}: not an .npz archive (not a zip file); write it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{source.spec}: not a readable .npz archive of numeric arrays ({err})") from err
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{source.spec}: missing key(s) {', '.join(missing)}; found {', '.join(arrays) or 'none'}; "
            f"expected {', '.join(NPZ_KEYS)} (and optionally {', '.join(NPZ_OPTIONAL)})"
        )
    unknown = [k for k in arrays if k not in NPZ_KEYS + NPZ_OPTIONAL]
    if unknown:
        raise DataError(
            f"{source.spec}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(NPZ_KEYS + NPZ_OPTIONAL)}"
        )
    if ("X_val" in arrays) != ("Y_val" in arrays):
        raise DataError(f"{source.spec}: X_val and Y_val come together (or neither)")
    splits = {
        split: _pair(
            f"{source.spec}:", arrays[f"X_{split}"], arrays[f"Y_{split}"], names=(f"X_{split}", f"Y_{split}")
        )
        for split in SPLITS
        if f"X_{split}" in arrays
    }
    return splits


def draw(
    source: DataSource | Mapping[str, str],
    n: int,
    seed: int,
    dtype: torch.dtype | None = None,
    split: str = "train",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples ``(X, Y)`` of ``split`` ("train", "test" or "val") for ``seed``, each (n, dim), of
    ``dtype`` (float32 unless given).

    Built-in and callable sources draw a new sample for every seed (``split`` only names it);
    an npz source returns ``n`` rows of the split's arrays chosen without replacement by ``seed``
    (the validation split is the test arrays when the archive has no ``X_val``).
    """
    import torch

    dtype = dtype or torch.float32
    source = as_source(source)
    if source.kind == "builtin":
        return make_data(n, seed, DataProcess(), dtype)
    if source.kind not in KINDS:
        raise DataError(f"unknown data source kind {source.kind!r}; the kinds are {', '.join(KINDS)}")
    _current(source)
    if source.kind == "callable":
        X, Y, _ = _call(source, n, seed)
    else:
        splits = _splits(source)
        X, Y = splits.get(split, splits["test"])
        rows = len(X)
        if n > rows:
            raise DataError(f"{source.spec}: {n} {split} rows asked for, the archive has {rows}")
        chosen = np.random.default_rng(seed).permutation(rows)[:n]
        X, Y = X[chosen], Y[chosen]
    return torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)


def _rows(source: DataSource) -> dict[str, int]:
    splits = _splits(source)
    return {split: len(splits.get(split, splits["test"])[0]) for split in SPLITS}


def check_config(source: DataSource, config: Any, stem: str) -> None:
    """An error before any computation when an npz source has fewer rows than ``config`` draws.

    The sizes are read from the fields of ``ROW_FIELDS`` (an int or a tuple of ints).
    """
    if source.kind != "npz":
        return
    rows = _rows(source)
    for name, split in ROW_FIELDS.items():
        wanted = getattr(config, name, None)
        largest = max(wanted) if isinstance(wanted, tuple) else wanted
        if isinstance(largest, int) and largest > rows[split]:
            raise DataError(
                f"{stem}.{name} = {largest} needs {largest} {split} rows but {source.spec} has {rows[split]}; "
                f"set [overrides.{stem}] {name} (or --set {stem}.{name}=...) to at most {rows[split]}"
            )


def noise_variance(source: DataSource | Mapping[str, str]) -> tuple[float, bool]:
    """R_t, the noise variance, and whether it is estimated (npz) rather than known (built-in, callable).

    An npz source's is the Gamma test's (:func:`gamma_test`) on all its rows (at most
    ``GAMMA_MAX_ROWS``, a seeded subset), assuming y = g(x) + eps with eps independent of x.
    """
    return _noise_variance(as_source(source))


@cache
def _noise_variance(source: DataSource) -> tuple[float, bool]:
    if source.kind == "builtin":
        return optimal_test_error(DataProcess()), False
    _current(source)
    if source.kind == "callable":
        return _call(source, PROBE_ROWS, 0)[2], False
    X, Y = (np.concatenate(parts) for parts in zip(*_splits(source).values(), strict=True))
    if len(X) > GAMMA_MAX_ROWS:
        keep = np.random.default_rng(0).permutation(len(X))[:GAMMA_MAX_ROWS]
        X, Y = X[keep], Y[keep]
    if len(X) < 4 * GAMMA_NEIGHBOURS:
        raise DataError(
            f"{source.spec}: {len(X)} rows in all; the noise estimate needs {4 * GAMMA_NEIGHBOURS}"
        )
    return gamma_test(X, Y), True


def summary(
    source: DataSource | Mapping[str, str], X_test: torch.Tensor, Y_test: torch.Tensor
) -> dict[str, Any]:
    """JSON facts about the data an experiment used, for its results and the report's data paragraph."""
    source = as_source(source)
    r_t, estimated = noise_variance(source)
    X, Y = X_test.double(), Y_test.double()
    facts: dict[str, Any] = {
        **asdict(source),
        "spec": shown(source),  # no path of this machine in the report
        "dim": int(Y.shape[1]),
        "r_t": r_t,
        "estimated": estimated,
        "noise_std": math.sqrt(r_t),
        "n_test": int(Y.shape[0]),
        "var_y": Y.var(0).mean().item(),
        "r_t_empirical": math.nan,  # the test MSE of the true g, known only for the built-in process
        "signal_var": math.nan,
    }
    if source.kind == "builtin":
        process = DataProcess()
        g = teacher(X, process)
        facts |= {
            "noise_std": process.noise_std,
            "r_t_empirical": ((g - Y) ** 2).mean(dim=(-2, -1)).item(),
            "signal_var": g.var(0).mean().item(),
        }
    if source.kind == "npz":
        facts["rows"] = _rows(source)
        facts["val_from_test"] = "val" not in _splits(source)
    return facts
