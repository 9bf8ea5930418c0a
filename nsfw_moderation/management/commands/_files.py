"""Finding image files on disk and classifying them, for ``nsfw_classify`` and ``nsfw_evaluate``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management.base import CommandError
from PIL import Image

from nsfw_moderation import imaging, policy, storage
from nsfw_moderation.backends import Classifier, ModelUnavailable, get_backend

#: Exit statuses, for scripts and CI.
CLEAN = 0
FLAGGED = 1
USAGE = 2
UNREADABLE = 3


@dataclass
class FileResult:
    path: str
    verdict: str
    score: float | None
    model: str
    scores: dict[str, float] = field(default_factory=dict)
    error: str = ""


def image_suffixes() -> frozenset[str]:
    """File name extensions of the formats :mod:`nsfw_moderation.imaging` accepts."""
    Image.init()
    return frozenset(
        ext for ext, fmt in Image.registered_extensions().items() if fmt in imaging.ALLOWED_FORMATS
    )


def find_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, plus the image files under the folders named (recursively, sorted).

    A file named explicitly is always tried; inside folders, only files with an
    image extension are picked up, and hidden files and folders are skipped.
    """
    suffixes = image_suffixes()
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if _is_image_in_folder(p, path, suffixes))
        elif path.exists():
            found.append(path)
        else:
            raise CommandError(f"No such file or folder: {raw}", returncode=USAGE)
    return found


def _is_image_in_folder(path: Path, root: Path, suffixes: frozenset[str]) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in suffixes and path.is_file()


def classify_files(
    files: Sequence[Path], backend: Classifier, batch_size: int
) -> Iterator[FileResult]:
    """Score ``files`` ``batch_size`` at a time; unreadable files come back with ``error`` set."""
    for start in range(0, len(files), batch_size):
        yield from _classify_batch(files[start : start + batch_size], backend)


def _classify_batch(files: Sequence[Path], backend: Classifier) -> list[FileResult]:
    decoded: list[tuple[Path, list[Image.Image]]] = []
    failed: dict[Path, str] = {}
    for path in files:
        try:
            decoded.append((path, load_file(path)))
        except (OSError, imaging.ImageDecodeError) as exc:
            failed[path] = str(exc)
    scores = iter(backend.classify([frame for _, frames in decoded for frame in frames]))
    by_path = {
        path: _result(path, [next(scores) for _ in frames], backend) for path, frames in decoded
    }
    return [
        by_path.get(path) or FileResult(str(path), "error", None, backend.name, error=failed[path])
        for path in files
    ]


def load_file(path: Path) -> list[Image.Image]:
    """The frames of an image file, read and decoded within the limits, as the worker would."""
    with path.open("rb") as handle:
        data = storage.read_limited(handle)
    return imaging.load_frames(data, storage.decode_limits())


def _result(path: Path, frame_scores: list[dict[str, float]], backend: Classifier) -> FileResult:
    worst, score = policy.worst_frame(frame_scores)
    verdict = str(policy.verdict_for(score))
    return FileResult(str(path), verdict, score, backend.name, frame_scores[worst])


def load_backend_or_fail(returncode: int = USAGE) -> Classifier:
    try:
        return get_backend()
    except ModelUnavailable as exc:
        raise CommandError(str(exc), returncode=returncode) from exc
