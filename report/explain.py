"""Why a task is stale, in one line: what its key hashes now against what its manifest recorded.

Every manifest stores the key's basis (:func:`report.cache.key_basis`): configuration, source
digests, input keys and library versions.  Comparing the two names the configuration fields,
source modules, input tasks or versions that changed, in the way ``pytask --explain`` and
``snakemake -n -r`` answer the same question.
"""

from typing import TYPE_CHECKING, Any

from report import cache

if TYPE_CHECKING:
    from report.pipeline import Graph


def _changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the configuration fields that differ (a whole value when not a mapping)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            field
            for name in sorted(old.keys() | new.keys())
            for field in _changed_fields(old.get(name), new.get(name), f"{prefix}{name}.")
        ]
    return [prefix.rstrip(".") or "config"] if old != new else []


def _source_name(path: str) -> str:
    """``experiments/batched_mlp.py`` -> ``experiments.batched_mlp``; other files keep their path."""
    if not path.endswith(".py"):
        return path
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def reason(graph: "Graph", name: str, forced: bool = False) -> str | None:
    """Why ``name`` would run, or None when it is cached and not forced."""
    if forced:
        return "forced (--force or --figure)"
    if graph.is_cached(name):
        return None
    why = _why(graph, name)
    if stored := graph.stored(name):
        when = stored.get("computed", "in an earlier run")
        return f"{why}; the store holds the result for its key (computed {when}): copied back, not run"
    return why


def _why(graph: "Graph", name: str) -> str:
    """What differs between the task's key now and its manifest in the build directory."""
    record = cache.read_manifest(graph.manifest(name))
    if record is None:
        return "no cache entry"
    if record["key"] == graph.key(name):
        return "an output is missing or was changed since the task ran"
    old = record.get("basis")
    if not isinstance(old, dict):
        return "its cache entry predates key records (written by an older builder)"
    new = graph.basis(name)
    parts = []
    if fields := _changed_fields(old.get("config"), new["config"]):
        parts.append(f"configuration changed: {', '.join(fields)}")
    if sources := _differing(old.get("sources") or {}, new["sources"]):
        parts.append(f"source changed: {', '.join(_source_name(s) for s in sources)}")
    if inputs := _differing(old.get("inputs") or {}, new["inputs"]):
        parts.append(f"input task changed: {', '.join(inputs)}")
    if versions := _differing(old.get("versions") or {}, new["versions"]):
        parts.append(f"library version changed: {', '.join(versions)}")
    return "; ".join(parts) or "its key changed"
