"""Cache keys follow the sources; writes are atomic."""

import os

import pytest

from report import cache


def test_source_closure_follows_project_imports_transitively(toy_project):
    files = {p.relative_to(toy_project).as_posix() for p in cache.source_closure(["toypkg.toy"], toy_project)}
    assert files == {"toypkg/__init__.py", "toypkg/toy.py", "toypkg/helper.py"}


def test_the_key_changes_with_config_source_and_inputs_only(toy_project):
    def key(config=1, inputs=("k",)):
        inputs = dict(enumerate(inputs))
        return cache.task_key(cache.key_basis("t", {"n": config}, ["toypkg.toy"], [], inputs, toy_project))

    base = key()
    assert key() == base
    assert key(config=2) != base
    assert key(inputs=("other",)) != base
    (toy_project / "toypkg" / "helper.py").write_text("SCALE = 3\n")
    assert key() != base


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")

    def broken_fdopen(fd, mode):
        os.close(fd)
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "fdopen", broken_fdopen)
    with pytest.raises(OSError, match="disk full"):
        cache.write_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_is_valid_needs_the_recorded_key_and_unchanged_outputs(tmp_path):
    out = tmp_path / "figure.pdf"
    out.write_bytes(b"%PDF-1")
    manifest = tmp_path / "manifest.json"
    cache.write_manifest(manifest, "abc", [out], {})
    assert cache.is_valid(manifest, "abc", [out])
    assert not cache.is_valid(manifest, "abd", [out])
    out.write_bytes(b"%PDF-2")
    assert not cache.is_valid(manifest, "abc", [out])


def test_the_key_ignores_docstrings_comments_and_layout(toy_project):
    def key():
        return cache.task_key(cache.key_basis("t", {}, ["toypkg.toy"], [], {}, toy_project))

    base = key()
    compute = toy_project / "toypkg" / "toy.py"
    source = compute.read_text()
    compute.write_text('"""Module docstring."""\n# comment\n\n' + source.replace("):\n", "):  # note\n", 1))
    assert key() == base
    compute.write_text(source.replace("range(config.n)", "range(config.n + 1)"))
    assert key() != base


def test_a_manifest_of_the_wrong_shape_is_no_record(tmp_path):
    manifest = tmp_path / "m.json"
    for text in (
        "[]",
        '"x"',
        '{"key": 1, "digests": {}}',
        '{"key": "k", "digests": []}',
        '{"key": "k", "digests": {}, "seconds": "abc"}',
    ):
        manifest.write_text(text)
        assert cache.read_manifest(manifest) is None, text
        assert not cache.is_valid(manifest, "k", [])
    manifest.write_text('{"key": "k", "digests": {}, "seconds": 1.5}')
    assert cache.is_valid(manifest, "k", [])


def test_outputs_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        cache.write_atomic(tmp_path / "report.pdf", b"%PDF")
        with cache.atomic_directory(tmp_path / "data") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "report.pdf").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o755
