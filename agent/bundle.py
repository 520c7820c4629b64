"""Model bundles: a folder holding `model.onnx` and `manifest.json`, written whole or not at all.

The manifest pins everything serving must reproduce from training — the window spec, the feature spec
(vocabulary, idf, scaler), the threshold and how it was chosen, the Drain snapshot the template ids refer
to — plus provenance (versions, data summary, metrics, the command that rebuilds it) and the sha256 of
`model.onnx`. The format is shared by every detector (Isolation Forest, DeepLog, Transformer): what only
one detector needs goes under the manifest's `model` key.

`write_bundle` writes into a temporary sibling folder and renames it into place, so a reader sees the old
bundle or the new one, never a half-written one. `load_bundle` checks every field and refuses a bundle
with a `BundleError(path, field, reason)` naming the first problem found.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.errors import BundleError
from agent.features import FeatureSpec
from agent.state import fsync_dir
from agent.windows import WindowSpec

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
DETECTORS = frozenset({"iforest", "deeplog", "transformer"})

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format_version": int,
    "detector": str,
    "created": str,
    "logwarden_version": str,
    "window": dict,
    "features": dict,
    "preprocessing": dict,
    "threshold": dict,
    "training": dict,
    "onnx": dict,
    "train_command": str,
    "model": dict,
}


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    method: str
    """How the value was chosen, e.g. `quantile` (of scores on normal training data) or `override`."""
    quantile: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "method": self.method, "quantile": self.quantile}


@dataclass(frozen=True, slots=True)
class OnnxInfo:
    inputs: list[str]
    outputs: list[str]
    opsets: dict[str, int]
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "opsets": self.opsets, "sha256": self.sha256}


def new_manifest(
    *,
    detector: str,
    window: WindowSpec,
    features: FeatureSpec,
    threshold: Threshold,
    onnx: OnnxInfo,
    training: dict[str, Any],
    train_command: str,
    model: dict[str, Any] | None = None,
    preprocessing: dict[str, Any] | None = None,
    drain_snapshot: str | None = None,
    created: str | None = None,
    template_names: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A complete manifest (sha256 is filled in by `write_bundle`).

    `template_names` (template id → text, for the ids of the vocabulary) lets an explanation name a template
    that has gone missing from the logs after a restart, before the daemon has seen its text again."""
    names = {} if template_names is None else {
        str(tid): template_names[tid] for tid in sorted(features.vocabulary) if tid in template_names}
    doc = {
        "format_version": FORMAT_VERSION,
        "detector": detector,
        "created": created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "logwarden_version": __version__,
        "window": window.to_dict(),
        "features": features.to_dict(),
        "preprocessing": preprocessing
        if preprocessing is not None
        else {"scaler": "in manifest (features.mean/scale)", "tfidf": "in manifest (features.idf)" if features.tfidf else None},
        "threshold": threshold.to_dict(),
        "drain_snapshot": drain_snapshot,
        "training": training,
        "onnx": onnx.to_dict(),
        "train_command": train_command,
        "model": model or {},
    }
    if names:
        doc["templates"] = names
    return doc


@dataclass(slots=True)
class Bundle:
    """A validated bundle; `manifest` is the raw JSON, the typed views below are parsed once at load."""

    path: Path
    manifest: dict[str, Any]
    model_bytes: bytes
    window: WindowSpec
    features: FeatureSpec
    threshold: Threshold
    onnx: OnnxInfo
    files: dict[str, bytes] = field(default_factory=dict)
    """Extra files listed in the manifest's `files`, already checked against their sha256."""
    template_names: dict[int, str] = field(default_factory=dict)
    """The manifest's optional `templates`: the text of each vocabulary template when it was trained."""

    @property
    def detector(self) -> str:
        return str(self.manifest["detector"])

    @property
    def model(self) -> dict[str, Any]:
        """Detector-specific settings (e.g. the novelty margin of the forest, DeepLog's top-g)."""
        value: dict[str, Any] = self.manifest["model"]
        return value

    @property
    def drain_snapshot(self) -> str | None:
        value = self.manifest.get("drain_snapshot")
        return str(value) if value is not None else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    out_dir: str | Path, model_bytes: bytes, manifest: dict[str, Any], extra_files: dict[str, bytes] | None = None
) -> Path:
    """Write a bundle atomically; an existing bundle at `out_dir` is replaced only once the new one is whole.

    `extra_files` (e.g. `drain.json`, the Drain state raw-log bundles need to map lines to the same
    template ids) are listed with their sha256 under the manifest's `files` and checked on load.
    """
    out = Path(out_dir).resolve()
    check_replaceable(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    extras = dict(extra_files or {})
    for name in extras:
        if name in (MODEL_FILE, MANIFEST_FILE) or "/" in name or name.startswith("."):
            raise ValueError(f"invalid extra bundle file name {name!r}")
    doc = dict(manifest)
    doc["onnx"] = {**doc.get("onnx", {}), "sha256": sha256_hex(model_bytes)}
    doc["files"] = {name: sha256_hex(data) for name, data in sorted(extras.items())}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is read by the daemon's user too
        for name, payload in (
            (MODEL_FILE, model_bytes),
            *sorted(extras.items()),
            (MANIFEST_FILE, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")),
        ):
            with open(tmp / name, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        old: Path | None = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{tmp.name[-12:]}")
            os.replace(out, old)
        os.replace(tmp, out)
        fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return out


def check_replaceable(out_dir: str | Path) -> None:
    """Refuse an `out` that is not ours to replace: the write renames whatever is there aside and deletes it,
    so a typo'd or tab-completed path to a folder of notes used to lose that folder with everything in it.
    A new path, an empty folder and an existing bundle (retraining, self-baselining) are fine. `train`
    calls it before training too, so a bad --out costs no training time."""
    where, out = str(out_dir), Path(out_dir).resolve()
    if not out.exists():
        return
    if not out.is_dir():
        raise BundleError(where, "path", "exists and is not a folder; give a new, empty or bundle folder")
    if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise BundleError(
            where, "path", f"a folder that is not a model bundle (no {MANIFEST_FILE}); it would be replaced with "
            "everything in it, so give a new, empty or bundle folder"
        )


def load_bundle(
    path: str | Path, expected_detector: str | None = None, vocabulary_hash: str | None = None
) -> Bundle:
    """Read and validate a bundle; refuses anything that does not match with the field and the reason."""
    p = Path(path)
    where = str(p)
    if not p.is_dir():
        raise BundleError(where, "path", "not a bundle folder" if p.exists() else "does not exist")
    manifest_path, model_path = p / MANIFEST_FILE, p / MODEL_FILE
    for f in (manifest_path, model_path):
        if not f.is_file():
            raise BundleError(where, f.name, "missing")
    try:
        doc = json.loads(manifest_path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(where, MANIFEST_FILE, f"not readable JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BundleError(where, MANIFEST_FILE, "not a JSON object")
    version = doc.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(where, "format_version", f"unsupported {version!r}; this logwarden reads {sorted(SUPPORTED_VERSIONS)}")
    for key, tp in _REQUIRED.items():
        if key not in doc:
            raise BundleError(where, key, "missing from manifest")
        if not isinstance(doc[key], tp) or isinstance(doc[key], bool):
            raise BundleError(where, key, f"has the wrong type {type(doc[key]).__name__}")
    detector = doc["detector"]
    if detector not in DETECTORS:
        raise BundleError(where, "detector", f"unknown detector {detector!r}")
    if expected_detector is not None and detector != expected_detector:
        raise BundleError(where, "detector", f"is {detector!r}, expected {expected_detector!r}")
    snapshot = doc.get("drain_snapshot")
    if snapshot is not None and not isinstance(snapshot, str):
        raise BundleError(where, "drain_snapshot", "must be a string or null")
    if vocabulary_hash is not None and snapshot is not None and snapshot != vocabulary_hash:
        raise BundleError(
            where, "drain_snapshot", f"template ids refer to Drain snapshot {snapshot}, this host has {vocabulary_hash}"
        )
    model_bytes = model_path.read_bytes()
    onnx = _onnx_info(where, doc["onnx"])
    actual = sha256_hex(model_bytes)
    if actual != onnx.sha256:
        raise BundleError(where, "onnx.sha256", f"model.onnx has sha256 {actual}, manifest says {onnx.sha256}")
    try:
        window = WindowSpec.from_dict(doc["window"])
    except (ValueError, TypeError) as exc:
        raise BundleError(where, "window", str(exc)) from None
    try:
        features = FeatureSpec.from_dict(doc["features"])
    except (ValueError, TypeError) as exc:
        raise BundleError(where, "features", str(exc)) from None
    threshold = _threshold(where, doc["threshold"])
    extras = _extra_files(p, doc.get("files", {}))
    return Bundle(p, doc, model_bytes, window, features, threshold, onnx, extras, _template_names(where, doc))


def _template_names(where: str, doc: dict[str, Any]) -> dict[int, str]:
    raw = doc.get("templates", {})
    if not isinstance(raw, dict):
        raise BundleError(where, "templates", "must map template ids to their text")
    out: dict[int, str] = {}
    for key, text in raw.items():
        if not (isinstance(key, str) and key.lstrip("-").isdigit() and isinstance(text, str)):
            raise BundleError(where, f"templates.{key}", "must map a template id to its text")
        out[int(key)] = text
    return out


def _extra_files(p: Path, listed: object) -> dict[str, bytes]:
    if not isinstance(listed, dict):
        raise BundleError(str(p), "files", "must map file names to sha256 digests")
    out: dict[str, bytes] = {}
    for name, digest in listed.items():
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not isinstance(digest, str):
            raise BundleError(str(p), "files", f"invalid entry {name!r}")
        try:
            data = (p / name).read_bytes()
        except OSError:
            raise BundleError(str(p), name, "missing") from None
        if sha256_hex(data) != digest:
            raise BundleError(str(p), f"files.{name}", f"has sha256 {sha256_hex(data)}, manifest says {digest}")
        out[name] = data
    return out


def _onnx_info(where: str, raw: dict[str, Any]) -> OnnxInfo:
    inputs, outputs, opsets, sha = raw.get("inputs"), raw.get("outputs"), raw.get("opsets"), raw.get("sha256")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(n, str) for n in inputs):
        raise BundleError(where, "onnx.inputs", "must be a non-empty list of names")
    if not isinstance(outputs, list) or not outputs or not all(isinstance(n, str) for n in outputs):
        raise BundleError(where, "onnx.outputs", "must be a non-empty list of names")
    if not isinstance(opsets, dict) or not all(isinstance(v, int) for v in opsets.values()):
        raise BundleError(where, "onnx.opsets", "must map domains to versions")
    if not isinstance(sha, str) or len(sha) != 64:
        raise BundleError(where, "onnx.sha256", "missing or not a sha256 hex digest")
    return OnnxInfo(list(inputs), list(outputs), dict(opsets), sha)


def _threshold(where: str, raw: dict[str, Any]) -> Threshold:
    value, method, quantile = raw.get("value"), raw.get("method"), raw.get("quantile")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BundleError(where, "threshold.value", "must be a number")
    if not isinstance(method, str) or not method:
        raise BundleError(where, "threshold.method", "must say how the threshold was chosen")
    if quantile is not None and not (isinstance(quantile, int | float) and 0.0 < quantile <= 1.0):
        raise BundleError(where, "threshold.quantile", "must be in (0, 1]")
    return Threshold(float(value), method, float(quantile) if quantile is not None else None)
