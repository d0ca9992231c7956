"""The result store: several results per task by key, found again after a switch and back, pruned,
shared by concurrent builds, exported to and imported from one archive (checked against its key)."""

import dataclasses
import json
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest

from report.cli import main
from report.listing import dry_run, task_table
from report.project import Project
from report.store import Store, parse_age, parse_size
from report.wiring import ReportGraph


def make_graph(
    project: Path, stage, out: str = "build", store: Store | None = None, n: int = 3
) -> ReportGraph:
    compute = stage.compute_module()
    compute.PROFILES["quick"] = dataclasses.replace(compute.PROFILES["quick"], n=n)
    graph = ReportGraph("quick", Project(project, (stage,)), out=project / out)
    if store is not None:
        graph.store = store
    return graph


def quiet(_: str) -> None:
    pass


def ran(outcomes) -> set[str]:
    return {o.task for o in outcomes if o.ran}


def restored(outcomes) -> set[str]:
    return {o.task for o in outcomes if o.restored}


def test_switching_a_configuration_and_back_finds_the_earlier_results_and_runs_nothing(
    toy_project, toy_stage
):
    first = make_graph(toy_project, toy_stage)
    assert ran(first.run(["toy_fig"], log=quiet)) == {"toy", "toy_fig"}
    before = (toy_project / "build" / "data" / "toy" / "results.json").read_text()
    assert ran(make_graph(toy_project, toy_stage, n=4).run(["toy_fig"], log=quiet)) == {"toy", "toy_fig"}
    back = make_graph(toy_project, toy_stage)
    outcomes = back.run(["toy_fig"], log=quiet)
    assert ran(outcomes) == set() and restored(outcomes) == {"toy", "toy_fig"}
    assert (toy_project / "build" / "data" / "toy" / "results.json").read_text() == before
    assert back.is_cached("toy") and back.is_cached("toy_fig")


def test_list_and_dry_run_say_when_a_result_comes_from_an_earlier_entry(toy_project, toy_stage):
    make_graph(toy_project, toy_stage).run(["toy_fig"], log=quiet)
    make_graph(toy_project, toy_stage, n=4).run(["toy_fig"], log=quiet)
    back = make_graph(toy_project, toy_stage)
    rows = {
        line.split()[0]: line for line in task_table(back, explain=True)[1:] if line.split()[0] in back.tasks
    }
    assert rows["toy"].split()[2] == "stored" and rows["toy_fig"].split()[2] == "stored"
    plan = dry_run(back, ["toy_fig"], set(), explain=True)
    assert plan[-1] == "0 task(s) would run, 2 from the store, 0 cached"
    assert any(line.startswith("from the store: toy (in the store: computed 20") for line in plan)
    back.run(["toy_fig"], log=quiet)
    table = task_table(back, explain=True)
    row = next(i for i, line in enumerate(table) if line.startswith("toy "))
    assert table[row].split()[2] == "restored"
    assert "from the store: computed 20" in table[row + 1]


def test_prune_by_age_lists_with_a_dry_run_and_never_removes_the_current_results(toy_project, toy_stage):
    make_graph(toy_project, toy_stage, n=4).run(["toy"], log=quiet)
    graph = make_graph(toy_project, toy_stage)
    graph.run(["toy"], log=quiet)
    old, current = graph.store.entries(), graph.key("toy")
    for entry in old:
        os.utime(entry.path / "entry.json", (time.time() - 10 * 86400,) * 2)
    listed = graph.store.prune(older_than=parse_age("7d"), keep=[current], dry_run=True)
    assert [e.task for e in listed] == ["toy"] and listed[0].key != current
    assert len(list(graph.store.entries())) == 2  # a dry run removes nothing
    assert graph.store.prune(older_than=parse_age("7d"), keep=[current]) == listed
    assert [e.key for e in graph.store.entries()] == [current]


def test_prune_by_size_removes_the_least_recently_used_first(tmp_path):
    store = Store(tmp_path / "store")
    for i, age in enumerate([3, 1, 2]):
        out = tmp_path / f"out{i}.bin"
        out.write_bytes(bytes(1000))
        basis = {"task": f"t{i}"}
        key = _key(basis)
        store.put(key, [out], {"key": key, "digests": _digests(out), "basis": basis})
        os.utime(store.path(key) / "entry.json", (time.time() - age * 3600,) * 2)
    removed = store.prune(max_bytes=2500)
    assert [e.task for e in removed] == ["t0"]  # unused for 3 h: the oldest
    assert parse_size("2GB") == 2 * 2**30


def _key(basis: dict) -> str:
    from report.cache import task_key

    return task_key(basis)


def _digests(out: Path) -> dict:
    from report.cache import digest_tree

    return {out.name: digest_tree(out)}


def test_concurrent_builds_storing_the_same_key_leave_one_complete_entry(tmp_path):
    out = tmp_path / "result.bin"
    out.write_bytes(os.urandom(200_000))
    basis = {"task": "t"}
    key = _key(basis)
    stores = [Store(tmp_path / "shared") for _ in range(8)]
    threads = [
        threading.Thread(
            target=s.put, args=(key, [out], {"key": key, "digests": _digests(out), "basis": basis})
        )
        for s in stores
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].record(key) is not None
    assert [e.key for e in stores[0].entries()] == [key]
    assert list((tmp_path / "shared" / "tmp").iterdir()) == []  # no staging directory left behind


def test_an_exported_store_builds_elsewhere_without_computing_and_a_tampered_entry_is_refused(
    toy_project, toy_stage, tmp_path
):
    graph = make_graph(toy_project, toy_stage)
    graph.run(["toy_fig"], log=quiet)
    archive = tmp_path / "results.zip"
    assert graph.store.export([graph.key("toy"), graph.key("toy_fig")], archive) == 2
    elsewhere = Store(tmp_path / "coauthor")
    assert elsewhere.import_archive(archive) == (2, [])
    fresh = make_graph(toy_project, toy_stage, out="fresh", store=elsewhere)
    outcomes = fresh.run(["toy_fig"], log=quiet)
    assert ran(outcomes) == set() and restored(outcomes) == {"toy", "toy_fig"}

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith("results.json"):
                data = json.dumps({"values": [6, 6, 6]}).encode()
            if name == f"{graph.key('toy_fig')}/entry.json":  # a record claiming another configuration
                record = json.loads(data)
                record["basis"]["config"] = {"n": 4}
                data = json.dumps(record).encode()
            target.writestr(name, data)
    assert Store(tmp_path / "other").import_archive(tampered) == (
        0,
        [
            f"{key[:12]}: {why}"
            for key, why in sorted(
                [
                    (graph.key("toy"), "its output toy differs from the recorded digests"),
                    (graph.key("toy_fig"), "its recorded basis does not hash to its key"),
                ]
            )
        ],
    )


def test_the_cli_uses_the_cache_dir_and_prunes_with_a_dry_run(toy_project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(toy_project)
    shared = tmp_path / "shared-store"
    assert main(["--project", ".", "--jobs", "1", "--cache-dir", str(shared), "toy"]) == 0
    assert len(list(Store(shared).entries())) == 1
    capsys.readouterr()
    assert main(["--project", ".", "--cache-dir", str(shared), "--prune", "0h", "--dry-run"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1].startswith("would remove 0 entries")
    )  # the current one stays
    assert main(["--project", ".", "--cache-dir", str(shared), "--prune", "soon"]) == 2


@pytest.mark.parametrize("text", ["", "12", "3x", "d"])
def test_a_bad_age_is_refused(text):
    with pytest.raises(ValueError, match="expected an age"):
        parse_age(text)


def test_settings_name_the_store_directory_in_a_cache_table():
    from report.settings import SettingsError, parse

    assert parse('[cache]\ndir = "/shared/nndl-store"').cache == {"dir": "/shared/nndl-store"}
    with pytest.raises(SettingsError, match=r'\[cache\] holds one key, dir = "path/to/store"'):
        parse('[cache]\npath = "x"')


def test_explain_says_a_stale_task_comes_back_from_the_store(toy_project, toy_stage):
    from report.explain import reason

    make_graph(toy_project, toy_stage).run(["toy"], log=quiet)
    make_graph(toy_project, toy_stage, n=4).run(["toy"], log=quiet)
    why = reason(make_graph(toy_project, toy_stage), "toy")
    assert why.startswith("configuration changed: n; the store holds the result for its key (computed 20")


def test_the_cli_exports_the_results_and_a_coauthor_imports_them_and_computes_nothing(
    toy_project, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(toy_project)
    archive = tmp_path / "results.zip"
    assert main(["--project", ".", "--jobs", "1", "toy_fig"]) == 0
    assert main(["--project", ".", "--export-cache", str(archive)]) == 0
    assert "wrote" in capsys.readouterr().out and archive.is_file()
    shutil.rmtree(toy_project / "build")  # a co-author's checkout: no build directory, no store
    assert main(["--project", ".", "--jobs", "1", "--import-cache", str(archive), "toy_fig"]) == 0
    printed = capsys.readouterr().out
    assert "imported 2 store entries" in printed
    assert "0 task(s) ran, 2 from the store, 0 cached" in printed
