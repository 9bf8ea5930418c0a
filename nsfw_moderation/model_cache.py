"""Where converted models live on disk, and what each one records.

One folder per (model, revision, precision, runtime version), under
``OPENVINO_CACHE`` (default ``~/.cache/nsfw_moderation/openvino``)::

    Falconsai--nsfw_image_detection/
      latest                          the revision converted last
      <revision>/
        int8-openvino-2026.4.1/
          model.xml, model.bin        takes RGB uint8 pixels, normalises them itself
          entry.json                  labels, input size, runtime settings, the guard's scores,
                                      the SHA-256 of model.xml and model.bin
        int8-openvino-2026.4.1.refused.json   the last refused conversion, if any

The revision is the commit the Hugging Face cache holds for ``MODEL`` or, for
a local directory, a fingerprint of its files (names, sizes and modification
times), so a model retrained into the same folder gets a new key. A worker
that received only this cache, without the source model, uses ``latest``.
A revision is a folder name, so one read from a file (the Hugging Face
cache's ``refs/``, ``latest``) must be a full commit hash or a fingerprint:
anything else (``../elsewhere``) is refused (:class:`CacheError`), never
joined into a path.

Before a converted model is loaded, its files must have the SHA-256 that the
conversion recorded in ``entry.json``: a changed or swapped ``model.bin`` is
refused, not run with the guard's report of another model. (Whoever can
rewrite ``entry.json`` too can record new hashes: this catches swaps,
corruption and incomplete copies, not a writer who owns the cache.)

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
#: The files of a conversion whose SHA-256 ``entry.json`` records (``files``).
MODEL_FILES = (MODEL_FILE, "model.bin")
#: Files whose contents and dates make up a local model directory's fingerprint.
SOURCE_FILES = ("config.json", "preprocessor_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


class CacheError(ValueError):
    """The cache holds what must not be loaded: a revision that is no folder of its, changed files.

    The message is for the operator: it names the file and what to do.
    """


#: A revision that may name a folder: a full commit hash, or a local folder's fingerprint.
REVISION = re.compile(r"[0-9a-f]{40}|local-[0-9a-f]{16}")


def checked_revision(revision: str, source: str) -> str:
    """``revision`` if it is a commit hash or a fingerprint; :class:`CacheError` otherwise."""
    if not REVISION.fullmatch(revision):
        raise CacheError(
            f"The revision {revision!r} read from {source} is not a commit hash (40 lowercase "
            "hexadecimal digits) nor a local folder's fingerprint: refused, as the cache "
            "would take it for a folder name. Download the model again "
            "(`manage.py nsfw_model download`) or remove that file."
        )
    return revision


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

    def __post_init__(self) -> None:
        # No key names a folder outside its model's: whatever gave the revision.
        checked_revision(self.revision, "the cache key")

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
    """The commit of ``revision`` (a branch or tag) that the Hugging Face cache holds.

    Raises :class:`CacheError` when the file holds anything but a commit hash.
    """
    ref = (hub_cache or _hub_cache()) / f"models--{model.replace('/', '--')}" / "refs" / revision
    return _read_revision(ref)


def _read_revision(path: Path) -> str | None:
    try:
        text = path.read_bytes().decode("utf-8", "replace").strip()
    except OSError:
        return None
    return checked_revision(text, str(path)) if text else None


def _hub_cache() -> Path:
    try:
        from huggingface_hub import constants
    except ImportError:
        home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
        return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub")
    return Path(constants.HF_HUB_CACHE)


def latest_revision(model: str) -> str | None:
    """The revision converted last (``latest``); :class:`CacheError` if it is not one."""
    return _read_revision(cache_root() / slug(model) / "latest")


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

    def verify(self) -> None:
        """Refuse (:class:`CacheError`) files other than those the conversion wrote.

        Refused, not converted again: a worker has no torch to convert with,
        and a file that changed under a model that passed the guard is for the
        operator to look at. ``nsfw_model optimize`` writes a fresh one.
        """
        again = "Run `manage.py nsfw_model optimize` again (or copy OPENVINO_CACHE again)."
        recorded = self.meta.get("files")
        if not isinstance(recorded, dict) or set(recorded) != set(MODEL_FILES):
            raise CacheError(
                f"The converted model in {self.folder} records no SHA-256 of its files "
                f"(converted by an earlier version, or its {ENTRY_FILE} was edited). {again}"
            )
        found = digests(self.folder)
        for name in MODEL_FILES:
            if found.get(name) != recorded[name]:
                raise CacheError(
                    f"{self.folder / name} does not have the SHA-256 recorded when it was "
                    f"converted: it was changed, swapped or copied in part. Refused. {again}"
                )


def digests(folder: Path) -> dict[str, str]:
    """The SHA-256 of each of a conversion's :data:`MODEL_FILES` in ``folder`` that is there."""
    found = {}
    for name in MODEL_FILES:
        try:
            with (folder / name).open("rb") as file:
                found[name] = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError:
            continue
    return found


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
