"""Bundles: written whole or not at all; every mismatch refused with the field and the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.bundle import MANIFEST_FILE, MODEL_FILE, load_bundle, write_bundle
from agent.errors import BundleError
from agent.training.iforest import ForestOptions, build_bundle
from agent.types import Window
from agent.windows import WindowSpec

SPEC = WindowSpec(type="session", key=r"blk_-?\d+")


def small_bundle(seed: int = 0) -> tuple[bytes, dict[str, Any]]:
    windows = [Window("s", str(i), 0.0, 0.0, events=[1, 2, 2, 3][: 2 + i % 3]) for i in range(40)]
    return build_bundle(windows, SPEC, ForestOptions(n_estimators=5, seed=seed), command="logwarden train ...")


@pytest.fixture(scope="module")
def made() -> tuple[bytes, dict[str, Any]]:
    return small_bundle()


def test_round_trip(tmp_path: Path, made: tuple[bytes, dict[str, Any]]) -> None:
    model, manifest = made
    out = write_bundle(tmp_path / "b", model, manifest, {"drain.json": b"{}"})
    b = load_bundle(out, expected_detector="iforest")
    assert b.detector == "iforest" and b.model_bytes == model and b.window == SPEC
    assert b.features.vocabulary == {1: 0, 2: 1, 3: 2}
    assert b.threshold.method == "quantile" and b.threshold.quantile == 0.995
    assert b.onnx.inputs == ["features"] and b.files == {"drain.json": b"{}"}
    doc = json.loads((out / MANIFEST_FILE).read_text())
    for key in ("format_version", "created", "logwarden_version", "window", "features", "preprocessing",
                "threshold", "drain_snapshot", "training", "onnx", "train_command", "model"):
        assert key in doc


def test_the_manifest_names_the_vocabulary_templates(tmp_path: Path) -> None:
    """So that after a restart an explanation can name a template that stopped before it was seen again."""
    windows = [Window("s", str(i), 0.0, 0.0, events=[1, 2, 2], templates={1: "old text", 2: "Job <*> done"})
               for i in range(20)]
    windows[-1].templates[1] = "Job <*> started"  # a template's text as Drain last generalised it wins
    model, manifest = build_bundle(windows, SPEC, ForestOptions(n_estimators=5),
                                   command="test", template_names={2: "Job <*> done in <*>", 9: "not in the vocabulary"})
    out = write_bundle(tmp_path / "b", model, manifest)
    assert json.loads((out / MANIFEST_FILE).read_text())["templates"] == {"1": "Job <*> started", "2": "Job <*> done in <*>"}
    assert load_bundle(out).template_names == {1: "Job <*> started", 2: "Job <*> done in <*>"}
    doc = json.loads((out / MANIFEST_FILE).read_text())
    for bad, field in (([1, 2], "templates"), ({"one": "x"}, "templates.one"), ({"1": 7}, "templates.1")):
        (out / MANIFEST_FILE).write_text(json.dumps({**doc, "templates": bad}))
        _refused(out, field)
    (out / MANIFEST_FILE).write_text(json.dumps({k: v for k, v in doc.items() if k != "templates"}))
    assert load_bundle(out).template_names == {}  # bundles written before the field: nothing to name with


def test_rewrite_replaces_whole_bundle_and_leaves_no_temp(tmp_path: Path, made: tuple[bytes, dict[str, Any]]) -> None:
    model, manifest = made
    write_bundle(tmp_path / "b", model, manifest, {"drain.json": b"{}"})
    write_bundle(tmp_path / "b", model, manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [MANIFEST_FILE, MODEL_FILE]


def test_failed_write_leaves_nothing(tmp_path: Path, made: tuple[bytes, dict[str, Any]]) -> None:
    model, manifest = made
    with pytest.raises(ValueError):
        write_bundle(tmp_path / "b", model, manifest, {"../evil": b""})
    with pytest.raises(TypeError):
        write_bundle(tmp_path / "c", model, {**manifest, "model": {"x": object()}})
    assert list(tmp_path.iterdir()) == []


def _refused(path: Path, field: str, **kw: Any) -> BundleError:
    with pytest.raises(BundleError) as info:
        load_bundle(path, **kw)
    assert info.value.field == field, str(info.value)
    return info.value


def test_refusals(tmp_path: Path, made: tuple[bytes, dict[str, Any]]) -> None:
    model, manifest = made
    _refused(tmp_path / "nope", "path")
    b = write_bundle(tmp_path / "b", model, {**manifest, "drain_snapshot": "abc"})
    _refused(b, "detector", expected_detector="deeplog")
    err = _refused(b, "drain_snapshot", vocabulary_hash="def")
    assert "abc" in err.reason and "def" in err.reason
    load_bundle(b, vocabulary_hash="abc")

    (b / MODEL_FILE).write_bytes(model + b"x")
    _refused(b, "onnx.sha256")
    (b / MODEL_FILE).unlink()
    _refused(b, MODEL_FILE)

    b = write_bundle(tmp_path / "c", model, manifest)
    doc = json.loads((b / MANIFEST_FILE).read_text())
    for field, mutate in [
        ("format_version", lambda d: d.update(format_version=99)),
        ("threshold", lambda d: d.pop("threshold")),
        ("features", lambda d: d["features"].update(scale=[1.0])),
        ("window", lambda d: d["window"].update(type="session", key=None, key_field=None)),
        ("threshold.value", lambda d: d["threshold"].update(value="high")),
        ("onnx.outputs", lambda d: d["onnx"].update(outputs=[])),
    ]:
        broken = json.loads(json.dumps(doc))
        mutate(broken)
        (b / MANIFEST_FILE).write_text(json.dumps(broken))
        _refused(b, field)
    (b / MANIFEST_FILE).write_text("{not json")
    _refused(b, MANIFEST_FILE)


def test_extra_file_tampering_is_refused(tmp_path: Path, made: tuple[bytes, dict[str, Any]]) -> None:
    model, manifest = made
    b = write_bundle(tmp_path / "b", model, manifest, {"drain.json": b"{}"})
    (b / "drain.json").write_bytes(b"{ }")
    _refused(b, "files.drain.json")


def test_a_folder_that_is_not_a_bundle_or_a_file_is_refused_and_kept(
    tmp_path: Path, made: tuple[bytes, dict[str, Any]]
) -> None:
    """write_bundle renames whatever is at `out_dir` aside and deletes it; a typo'd or tab-completed path to a
    folder of notes used to lose that folder. Only a new path, an empty folder or a bundle may be replaced."""
    model, manifest = made
    notes = tmp_path / "d"
    notes.mkdir()
    (notes / "x").write_text("mine")
    with pytest.raises(BundleError) as err:
        write_bundle(notes, model, manifest)
    assert err.value.path == str(notes) and "not a model bundle" in err.value.reason
    assert (notes / "x").read_text() == "mine"
    a_file = tmp_path / "f"
    a_file.write_text("mine")
    with pytest.raises(BundleError) as err:
        write_bundle(a_file, model, manifest)
    assert err.value.path == str(a_file) and "not a folder" in err.value.reason
    assert a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]  # no temp folder left behind
    empty = tmp_path / "e"
    empty.mkdir()
    assert load_bundle(write_bundle(empty, model, manifest)).model_bytes == model
