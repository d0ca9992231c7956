"""What a job runs in another process or on a Dask worker; the standard library only.

This module travels in every code archive that :mod:`report.shipping` sends to a cluster, so a
worker with nothing of the project installed can unpickle a shard's action (``partial(run_shard,
module, spec)``) once that archive is on its path.  It imports nothing of the project itself.
"""

import importlib
import pickle
import time
import traceback
from pathlib import Path
from typing import Any


def run_shard(module: str, spec: dict[str, Any]) -> Any:
    """One shard's part, ``module.run_shard(spec)``: a dict of arrays (see :mod:`report.stages`)."""
    return importlib.import_module(module).run_shard(spec)


def project_frame(error: BaseException, project: Path) -> str:
    """``file:line in function`` of the innermost traceback frame inside ``project``, or ""."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(project) and ".venv" not in path.parts:
            where = f"{path.relative_to(project)}:{frame.lineno} in {frame.name}"
    return where


def execute(payload: bytes, project: Path) -> tuple[str, Any, Any]:
    """Unpickle a job's action and call it: ``("done", value, seconds)``, or ``("failed", "Type:
    message", frame)`` when it raises (plain strings: the exception's class may exist only here)."""
    start = time.perf_counter()
    try:
        value = pickle.loads(payload)()
    except Exception as err:  # noqa: BLE001 (reported to the build, which names the task)
        return "failed", f"{type(err).__name__}: {err}", project_frame(err, project)
    return "done", value, time.perf_counter() - start
