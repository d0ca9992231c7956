"""Sharded stages and the executors: only new shards run, shards equal a monolithic run, and a
local pool or a Dask cluster gives the same result files as one process.

The cluster tests start real ``dask scheduler`` and ``dask worker`` processes outside the checkout
and without ``PYTHONPATH``, as the README does, so that the workers have only the code the build
ships them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from report import executors
from report.cli import main
from report.executors import InProcess, Job, LocalPool, TaskError
from report.paths import ROOT
from report.project import Project
from report.stages import Stage
from report.wiring import ReportGraph

SHARDED = """
    import os
    import time
    from dataclasses import dataclass
    from pathlib import Path

    import numpy as np

    from lab import progress
    from lab.io import load_arrays, save_arrays

    SLEEP = 0.0  # seconds per shard (the worker-loss test raises it)


    @dataclass(frozen=True)
    class Config:
        seeds: tuple[int, ...] = (0, 1, 2, 3)
        n: int = 5
        block: int = 2  # seeds s with the same s // block share a shard
        scale: float = 1.0  # applied by gather only: not in any shard's spec


    PROFILES = {"full": Config(seeds=tuple(range(8))), "quick": Config()}


    def shards(config: Config) -> dict[str, dict]:
        blocks: dict[int, list[int]] = {}
        for s in config.seeds:
            blocks.setdefault(s // config.block, []).append(s)
        return {f"n{config.n}-s{b[0]}..{b[-1]}": {"seeds": b, "n": config.n} for b in blocks.values()}


    def run_shard(spec: dict) -> dict[str, np.ndarray]:
        time.sleep(SLEEP)
        if -1 in spec["seeds"]:
            raise ValueError("seed -1 is refused")
        if -2 in spec["seeds"]:
            os._exit(1)  # the worker process dies
        with progress.bar(total=len(spec["seeds"]), desc="seeds") as bar:
            bar.update(len(spec["seeds"]))
        values = np.stack([np.random.default_rng(s).standard_normal(spec["n"]) for s in spec["seeds"]])
        return {"seeds": np.array(spec["seeds"]), "values": values}


    def gather(config: Config, parts: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        rows = {int(s): v for p in parts.values() for s, v in zip(p["seeds"], p["values"], strict=True)}
        return {"values": config.scale * np.stack([rows[s] for s in config.seeds])}


    def run(config: Config) -> dict[str, np.ndarray]:
        return gather(config, {k: run_shard(s) for k, s in shards(config).items()})


    def save(results: dict, directory: Path) -> None:
        save_arrays(results, directory)


    def load(directory: Path) -> dict:
        return load_arrays(directory)
"""

PRESENT = """
    import matplotlib.pyplot as plt

    from lab.style import figsize


    def plot(results):
        fig, ax = plt.subplots(figsize=figsize(2.0))
        ax.plot(results["values"].T)
        return fig


    FIGURES = {"sharded_fig": plot}


    def context(results):
        return {}
"""


@pytest.fixture
def sharded(toy_project) -> Stage:
    """A sweep stage of the toy project: seeds in blocks of two, each block one shard."""
    for name, text in (("sharded.py", SHARDED), ("sharded_plot.py", PRESENT)):
        (toy_project / "toypkg" / name).write_text(textwrap.dedent(text).lstrip())
    return Stage("sharded", "toypkg.sharded", "toypkg.sharded_plot")


def graph(project: Path, stage: Stage, out: str = "build", **overrides) -> ReportGraph:
    return ReportGraph(
        "quick",
        Project(project, (stage,)),
        out=project / out,
        overrides={stage.stem: overrides} if overrides else None,
    )


def ran(outcomes) -> set[str]:
    return {o.task for o in outcomes if o.ran}


def quiet(_: str) -> None:
    pass


def result_files(directory: Path) -> dict[str, object]:
    """Every file of a results directory by name: arrays of an NPZ by dtype, shape and bytes (the
    archive itself holds write times), JSON without its timings (keys ending in "seconds"), anything
    else as bytes."""
    files: dict[str, object] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.suffix == ".npz":
            with np.load(path) as f:
                files[path.name] = {k: (f[k].dtype.str, f[k].shape, f[k].tobytes()) for k in f.files}
        elif path.suffix == ".json":
            record = json.loads(path.read_text())
            files[path.name] = (
                {k: v for k, v in record.items() if not k.endswith("seconds")}
                if isinstance(record, dict)
                else record
            )
        else:
            files[path.name] = path.read_bytes()
    return files


def test_a_sweep_stage_is_its_shards_and_a_gather_task(toy_project, sharded):
    g = graph(toy_project, sharded)
    shards = ["sharded[n5-s0..1]", "sharded[n5-s2..3]"]
    assert g.members("sharded") == shards
    assert g.tasks["sharded"].inputs == tuple(shards)
    assert g.tasks[shards[0]].config == {"seeds": [0, 1], "n": 5}  # the spec is the shard's config
    assert g.tasks[shards[0]].outputs == (toy_project / "build" / "cache" / "sharded" / "n5-s0..1.npz",)
    assert g.closure(["sharded_fig"]) == [*shards, "sharded", "sharded_fig"]


def test_adding_seeds_computes_only_the_new_shard_and_keeps_the_old_results(toy_project, sharded):
    first = graph(toy_project, sharded)
    assert ran(first.run(["sharded"], log=quiet)) == {"sharded", "sharded[n5-s0..1]", "sharded[n5-s2..3]"}
    before = sharded.compute_module().load(first.data_dir("sharded"))["values"]
    grown = graph(toy_project, sharded, seeds=[0, 1, 2, 3, 4, 5])
    assert ran(grown.run(["sharded"], log=quiet)) == {"sharded", "sharded[n5-s4..5]"}
    after = sharded.compute_module().load(grown.data_dir("sharded"))["values"]
    assert np.array_equal(after[:4], before) and after.shape == (6, 5)
    rescaled = graph(toy_project, sharded, seeds=[0, 1, 2, 3, 4, 5], scale=2.0)  # a gather-only field
    assert ran(rescaled.run(["sharded"], log=quiet)) == {"sharded"}


def test_the_gathered_shards_equal_a_monolithic_run(toy_project, sharded):
    g = graph(toy_project, sharded, seeds=[3, 0, 7])
    g.run(["sharded"], log=quiet)
    compute = sharded.compute_module()
    monolithic = compute.run(compute.Config(seeds=(3, 0, 7)))
    assert result_files(g.data_dir("sharded")) == result_files_of(compute, monolithic, toy_project / "mono")


def result_files_of(compute, results, directory: Path) -> dict[str, object]:
    directory.mkdir()
    compute.save(results, directory)
    return result_files(directory)


def test_a_failing_shard_names_itself_and_its_spec(toy_project, sharded):
    g = graph(toy_project, sharded, seeds=[-1, 0])
    with pytest.raises(TaskError) as raised:
        g.run(["sharded"], log=quiet)
    message = str(raised.value)
    assert "task sharded[n5-s-1..-1] failed: ValueError: seed -1 is refused" in message
    assert 'spec: {"seeds": [-1], "n": 5}' in message and "toypkg/sharded.py:" in message


@pytest.mark.slow
def test_two_local_workers_give_the_same_files_as_one_process(toy_project, sharded):
    one = graph(toy_project, sharded, "one", seeds=list(range(6)))
    one.run(["sharded_fig"], log=quiet, executor=InProcess())
    pool = LocalPool(2)
    try:
        two = graph(toy_project, sharded, "two", seeds=list(range(6)))
        assert len(ran(two.run(["sharded_fig"], log=quiet, executor=pool))) == 5  # 3 shards, gather, figure
    finally:
        pool.close()
    assert result_files(one.data_dir("sharded")) == result_files(two.data_dir("sharded"))
    for shard in one.members("sharded"):
        assert result_files(one.tasks[shard].outputs[0].parent) == result_files(
            two.tasks[shard].outputs[0].parent
        )


@pytest.mark.slow
def test_pool_workers_run_elsewhere_with_a_share_of_the_cores():
    pool = LocalPool(2)
    try:
        pid = pool.submit(Job("pid", os.getpid, Path.cwd())).result()[0]
        threads = pool.submit(Job("threads", partial(os.getenv, "OMP_NUM_THREADS"), Path.cwd())).result()[0]
    finally:
        pool.close()
    assert pid != os.getpid()
    assert threads == str(max(1, (os.cpu_count() or 1) // 2))


def test_list_groups_shards_and_force_reaches_them(toy_project, sharded, monkeypatch, capsys):
    (toy_project / "project.py").write_text('STAGES = ("toypkg.sharded",)\nPROFILES = ("quick",)\n')
    monkeypatch.chdir(toy_project)
    assert main(["--project", ".", "--jobs", "1", "sharded[n5-s0..1]"]) == 0  # a shard is a target of its own
    capsys.readouterr()
    assert main(["--project", ".", "--list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split() == ["sharded", "data", "stale", "build/data/sharded"]
    assert rows[2].split() == ["+", "2", "shards", "shard", "1", "stale", "build/cache/sharded/"]
    assert not any("[" in r for r in rows)  # shards are not listed one by one
    assert main(["--project", ".", "--dry-run", "sharded", "--force", "sharded"]) == 0
    out = capsys.readouterr().out
    assert "+ 2 shards" in out and "3 task(s) would run (2 of them shards)" in out


def test_the_scheduler_flag_without_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it fails
    with pytest.raises(executors.ExecutorError, match=r"pip install -e '\.\[distributed\]'"):
        executors.make(1, "tcp://127.0.0.1:1")


def dask_process(*args: str, cwd: Path, log: Path, config: dict[str, str] | None = None) -> subprocess.Popen:
    """``dask ARGS`` as a new user runs it: from ``cwd`` (outside the checkout), without ``PYTHONPATH``
    (``config``: Dask settings as environment variables)."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    if dask is None:
        pytest.skip("needs the dask command: pip install -e '.[distributed]'")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | (config or {})
    with log.open("w") as out:
        return subprocess.Popen(
            [dask, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextmanager
def dask_processes(directory: Path, workers: int, config: dict[str, str] | None = None) -> Iterator[str]:
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes, as the README starts them:
    bound to 127.0.0.1 on free ports, one thread each; the scheduler's address."""
    pytest.importorskip("distributed", reason="needs dask.distributed: pip install -e '.[distributed]'")
    from distributed import Client

    scheduler_file = directory / "scheduler.json"
    common = ("--host", "127.0.0.1", "--no-dashboard")
    processes = [
        dask_process(
            "scheduler",
            *common,
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            cwd=directory,
            log=directory / "scheduler.log",
            config=config,
        )
    ]
    try:
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            processes.append(
                dask_process(
                    "worker",
                    address,
                    *common,
                    "--nthreads",
                    "1",
                    "--local-directory",
                    str(directory / f"w{i}"),
                    cwd=directory,
                    log=directory / f"worker{i}.log",
                )
            )
        if workers:
            with Client(address, timeout="30s") as client:
                client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a nanny busy restarting its worker: it and its worker
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """The address of a scheduler with two worker processes that know nothing of the project."""
    with dask_processes(tmp_path_factory.mktemp("cluster"), workers=2) as address:
        yield address


@pytest.fixture
def shipped(toy_project, sharded) -> Stage:
    """The sweep stage of a toy project that holds its own copy of ``lab`` (workers get only the project)."""
    shutil.copytree(ROOT / "lab", toy_project / "lab")
    return sharded


def kill_a_busy_worker(client, victims: list[int], finished: threading.Event) -> None:
    """SIGKILL the process of the first worker seen computing a task (its nanny starts a new one)."""
    while not victims and not finished.is_set():
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            victims.append(pid)
        time.sleep(0.1)


@pytest.mark.slow
def test_a_quick_sweep_forced_on_dask_processes_gives_the_local_files_despite_a_killed_worker(
    tmp_path, cluster
):
    """The README's recipe: the shards run on workers started elsewhere without the project, one
    worker is killed mid-shard, and the results equal a local build's with as many torch threads."""
    import distributed

    small = {
        "double_descent": {"widths": [4, 10, 20], "n_train": [100], "rank_widths": [2, 4], "rank_samples": 50}
    }
    local, pool = ReportGraph("quick", out=tmp_path / "local", overrides=small), LocalPool(2)
    try:
        local.run(["double_descent"], force=local.closure(["double_descent"]), log=quiet, executor=pool)
    finally:
        pool.close()
    remote = ReportGraph("quick", out=tmp_path / "remote", overrides=small)
    victims: list[int] = []
    finished = threading.Event()
    dask = executors.make(1, cluster)
    with distributed.Client(cluster) as client:
        killer = threading.Thread(target=kill_a_busy_worker, args=(client, victims, finished))
        killer.start()
        try:
            outcomes = remote.run(
                ["double_descent"], force=remote.closure(["double_descent"]), log=quiet, executor=dask
            )
        finally:
            finished.set()
            killer.join()
            dask.close()
    assert victims, "no worker was busy with a shard"
    assert ran(outcomes) == {"double_descent", *remote.members("double_descent")}
    assert result_files(local.data_dir("double_descent")) == result_files(remote.data_dir("double_descent"))


@pytest.mark.slow
def test_a_dask_build_gives_the_same_files_and_a_later_local_build_runs_nothing(
    toy_project, shipped, cluster
):
    local = graph(toy_project, shipped, "local", seeds=list(range(6)))
    local.run(["sharded"], log=quiet)
    dask = executors.make(1, cluster)
    try:
        remote = graph(toy_project, shipped, "remote", seeds=list(range(6)))
        assert len(ran(remote.run(["sharded"], log=quiet, executor=dask))) == 4
    finally:
        dask.close()
    assert result_files(local.data_dir("sharded")) == result_files(remote.data_dir("sharded"))
    again = graph(toy_project, shipped, "remote", seeds=list(range(6)))
    assert ran(again.run(["sharded"], log=quiet)) == set()


@pytest.mark.slow
def test_a_failing_shard_on_dask_names_itself_its_spec_and_its_line(toy_project, shipped, cluster):
    dask = executors.make(1, cluster)
    try:
        with pytest.raises(TaskError) as raised:
            graph(toy_project, shipped, seeds=[-1, 0]).run(["sharded"], log=quiet, executor=dask)
    finally:
        dask.close()
    message = str(raised.value)
    assert "task sharded[n5-s-1..-1] failed: ValueError: seed -1 is refused" in message
    assert 'spec: {"seeds": [-1], "n": 5}' in message and "toypkg/sharded.py:" in message


@pytest.mark.slow
def test_a_file_edited_after_the_keys_were_computed_is_not_shipped(toy_project, shipped, cluster):
    remote = graph(toy_project, shipped, "remote")
    remote.stale(["sharded"])  # the keys hash the code as the build found it ...
    slow_shards(toy_project, 0.01)  # ... which is no longer the code on disk
    dask = executors.make(1, cluster)
    try:
        with pytest.raises(executors.ExecutorError, match=r"toypkg/sharded\.py changed since the build"):
            remote.run(["sharded"], log=quiet, executor=dask)
    finally:
        dask.close()


@pytest.mark.slow
def test_workers_compute_an_edited_module_with_its_new_code(toy_project, shipped, cluster):
    dask = executors.make(1, cluster)
    try:
        graph(toy_project, shipped, "before", seeds=list(range(8))).run(["sharded"], log=quiet, executor=dask)
        module = toy_project / "toypkg" / "sharded.py"
        module.write_text(module.read_text().replace("standard_normal(", "uniform(size="))
        remote = graph(toy_project, shipped, "after", seeds=list(range(8)))
        assert len(ran(remote.run(["sharded"], log=quiet, executor=dask))) == 5
    finally:
        dask.close()
    sys.modules.pop("toypkg.sharded", None)  # this process imports the edited module afresh too
    local = graph(toy_project, shipped, "local", seeds=list(range(8)))
    local.run(["sharded"], log=quiet)
    assert result_files(local.data_dir("sharded")) == result_files(remote.data_dir("sharded"))


@pytest.mark.slow
def test_an_interrupt_cancels_the_shards_on_the_cluster_whose_keys_name_them(toy_project, shipped, cluster):
    import distributed

    slow_shards(toy_project, 8.0)
    submitted: list[str] = []
    dask = executors.make(1, cluster)
    with distributed.Client(cluster) as client:
        seen: list = []

        def interrupt_at_the_third(line: str) -> None:
            submitted.append(line)
            if len(submitted) == 3:
                time.sleep(1.0)  # the first two reach the workers
                seen.extend(key for keys in client.processing().values() for key in keys)
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            graph(toy_project, shipped, seeds=list(range(8))).run(
                ["sharded"], log=interrupt_at_the_third, executor=dask
            )
        deadline = time.monotonic() + 10
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(client.processing().values())  # cancelled, not left to run for 8 s
    assert sorted(key[1] for key in seen) == ["sharded[n5-s0..1]", "sharded[n5-s2..3]"]
    assert {key[0] for key in seen} == {"sharded"}  # the dashboard groups them by stage


@pytest.mark.slow
def test_without_workers_the_build_stops_with_one_line_naming_the_scheduler_and_the_shard(
    toy_project, shipped, tmp_path_factory, monkeypatch, capsys
):
    monkeypatch.setattr(executors, "WORKER_TIMEOUT", 2.0)
    (toy_project / "project.py").write_text('STAGES = ("toypkg.sharded",)\nPROFILES = ("quick",)\n')
    monkeypatch.chdir(toy_project)
    with dask_processes(tmp_path_factory.mktemp("lonely"), workers=0) as address:
        start = time.monotonic()
        assert main(["--project", ".", "--jobs", "1", "--scheduler", address, "sharded"]) == 1
        seconds = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: no Dask worker connected to the scheduler at {address} for 2 s; shard sharded[n5-s0..1] did not run"
    ]
    assert seconds < 15


def slow_shards(project: Path, seconds: float) -> None:
    module = project / "toypkg" / "sharded.py"
    module.write_text(module.read_text().replace("SLEEP = 0.0", f"SLEEP = {seconds}"))


@pytest.mark.slow
def test_workers_report_their_shards_progress_to_the_build(toy_project, shipped, cluster, monkeypatch):
    messages: list[dict] = []
    monkeypatch.setattr(executors, "SEND", messages.append)
    dask = executors.make(1, cluster)
    try:
        graph(toy_project, shipped, seeds=list(range(4))).run(["sharded"], log=quiet, executor=dask)
    finally:
        dask.close()
    deadline = time.monotonic() + 5  # events travel through the scheduler
    while len([m for m in messages if m["closed"]]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    closed = sorted((m["task"], m["n"], m["total"]) for m in messages if m["closed"])
    assert closed == [("sharded[n5-s0..1]", 2, 2), ("sharded[n5-s2..3]", 2, 2)]


@pytest.mark.slow
def test_a_shard_that_kills_every_worker_stops_the_build_with_one_line(
    toy_project, shipped, tmp_path_factory
):
    once = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}  # the second death is the last
    with dask_processes(tmp_path_factory.mktemp("deadly"), workers=1, config=once) as address:
        dask = executors.make(1, address)
        try:
            with pytest.raises(executors.ExecutorError) as raised:
                graph(toy_project, shipped, seeds=[-2]).run(["sharded"], log=quiet, executor=dask)
        finally:
            dask.close()
    assert str(raised.value) == (
        f"shard sharded[n5-s-2..-2] lost its worker on every try on the Dask scheduler at {address}"
    )


@pytest.mark.slow
def test_a_lost_scheduler_stops_the_build_with_one_line(toy_project, shipped, tmp_path_factory):
    import distributed

    slow_shards(toy_project, 5.0)
    directory = tmp_path_factory.mktemp("lost")
    with dask_processes(directory, workers=1) as address:
        dask = executors.make(1, address)
        killed = threading.Event()

        def kill_the_scheduler_once_busy() -> None:
            with distributed.Client(address) as client:
                while not any(client.processing().values()):
                    time.sleep(0.1)
            found = subprocess.run(  # the scheduler process: the only one started with this file
                ["pgrep", "-f", f"scheduler-file {directory / 'scheduler.json'}"],
                check=True,
                capture_output=True,
                text=True,
            )
            for pid in found.stdout.split():
                os.kill(int(pid), signal.SIGKILL)
                killed.set()

        killer = threading.Thread(target=kill_the_scheduler_once_busy)
        killer.start()
        try:
            with pytest.raises(executors.ExecutorError) as raised:
                graph(toy_project, shipped).run(["sharded"], log=quiet, executor=dask)
        finally:
            killer.join()
            dask.close()
    assert killed.is_set()
    assert str(raised.value).startswith(f"lost the Dask scheduler at {address}")
