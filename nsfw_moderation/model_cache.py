"""Where converted models live on disk, and what each one records.

One folder per (model, revision, precision, runtime version), under
``OPENVINO_CACHE`` (default ``~/.cache/nsfw_moderation/openvino``)::

    Falconsai--nsfw_image_detection/
      latest                          the revision converted last
      <revision>/
        int8-openvino-2026.4.1/
          model.xml, model.bin        takes RGB uint8 pixels, normalises them itself
          entry.json                  labels, input size, runtime settings, the guard's scores
        int8-openvino-2026.4.1.refused.json   the last refused conversion, if any

The revision is the commit the Hugging Face cache holds for ``MODEL`` or, for
a local directory, a fingerprint of its files (names, sizes and modification
times), so a model retrained into the same folder gets a new key. A worker
that received only this cache, without the source model, uses ``latest``.

A conversion is written to a staging folder and renamed into place only when
the accuracy guard accepts it, so workers never see half a model.

Imports neither torch nor openvino: workers, commands and system checks use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from nsfw_moderation.accuracy import Agreement
from nsfw_moderation.conf import conf

RUNTIME = "openvino"
ENTRY_FILE = "entry.json"
MODEL_FILE = "model.xml"
#: Files whose contents and dates make up a local model directory's fingerprint.
SOURCE_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def runtime_version() -> str | None:
    """The installed OpenVINO release (``2026.4.1``), or ``None``; without importing it."""
    try:
        return metadata.version(RUNTIME)
    except metadata.PackageNotFoundError:
        return None


def cache_root() -> Path:
    if conf.OPENVINO_CACHE:
        return Path(conf.OPENVINO_CACHE).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nsfw_moderation" / RUNTIME


def slug(model: str) -> str:
    """A folder name for a model id or path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model.strip("/")) or "model"


@dataclass(frozen=True)
class Key:
    model: str
    revision: str
    precision: str
    runtime_version: str

    @property
    def folder(self) -> Path:
        name = f"{self.precision}-{RUNTIME}-{self.runtime_version}"
        return cache_root() / slug(self.model) / self.revision / name

    @property
    def refused_file(self) -> Path:
        return self.folder.with_name(self.folder.name + ".refused.json")


def key_for(model: str, precision: str, version: str, pinned: str | None = None) -> Key | None:
    """The key of ``model`` (at the ``pinned`` revision) here, or ``None`` if nothing says which."""
    revision = source_revision(model, pinned) or latest_revision(model)
    return Key(model, revision, precision, version) if revision else None


def source_revision(model: str, pinned: str | None = None) -> str | None:
    """The revision of ``model``'s files on this machine, if they are here.

    A commit pinned in ``MODEL_REVISION`` is the revision itself, files or not.
    """
    path = Path(model)
    if path.is_dir():
        return local_fingerprint(path)
    if pinned and COMMIT.fullmatch(pinned):
        return pinned
    return hub_commit(model, pinned or "main")


COMMIT = re.compile(r"[0-9a-f]{40}")


def local_fingerprint(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        if (directory / name).is_file():
            digest.update(name.encode() + b"\0" + (directory / name).read_bytes())
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in directory.glob(pattern)})
    for path in weights:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return "local-" + digest.hexdigest()[:16]


def hub_commit(model: str, revision: str = "main", hub_cache: Path | None = None) -> str | None:
    """The commit of ``revision`` (a branch or tag) that the Hugging Face cache holds."""
    repo = (hub_cache or _hub_cache()) / f"models--{model.replace('/', '--')}"
    try:
        return (repo / "refs" / revision).read_text().strip() or None
    except OSError:
        return None


def _hub_cache() -> Path:
    try:
        from huggingface_hub import constants
    except ImportError:
        home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
        return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")
    return Path(constants.HF_HUB_CACHE)


def latest_revision(model: str) -> str | None:
    try:
        return (cache_root() / slug(model) / "latest").read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Entry:
    """A converted model: the active one of its key, or one being checked in a staging folder."""

    key: Key
    folder: Path
    meta: dict[str, Any]

    @property
    def model_file(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def agreement(self) -> Agreement:
        return Agreement.from_json(self.meta["agreement"])

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def load(key: Key, folder: Path | None = None) -> Entry | None:
    """The converted model of ``key`` (from ``folder`` rather than its own, while staged)."""
    folder = folder or key.folder
    try:
        meta = json.loads((folder / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Entry(key, folder, meta)


def refusal(key: Key) -> dict[str, Any] | None:
    """What the last refused conversion for ``key`` recorded, if there was one."""
    try:
        data: dict[str, Any] = json.loads(key.refused_file.read_text())
    except (OSError, ValueError):
        return None
    return data


def staging_folder(key: Key) -> Path:
    """An empty folder beside the entry's, to write a conversion into."""
    staging = key.folder.with_name(f"{key.folder.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / ENTRY_FILE).write_text(json.dumps(meta, indent=1))


def activate(staging: Path, key: Key) -> Entry:
    """Move a conversion the guard accepted into place (a rename: workers see all or nothing)."""
    old = key.folder.with_name(f"{key.folder.name}.old-{os.getpid()}")
    if key.folder.exists():
        key.folder.rename(old)
    staging.rename(key.folder)
    shutil.rmtree(old, ignore_errors=True)
    key.refused_file.unlink(missing_ok=True)
    (cache_root() / slug(key.model) / "latest").write_text(key.revision + "\n")
    entry = load(key)
    assert entry is not None
    return entry


def refuse(staging: Path, key: Key, report: dict[str, Any]) -> None:
    """Throw a conversion away, keeping why; an active entry stays as it was."""
    discard(staging)
    key.refused_file.write_text(json.dumps(report, indent=1))


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
