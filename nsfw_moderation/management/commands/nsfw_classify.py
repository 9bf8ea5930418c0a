"""``manage.py nsfw_classify PATH...``: score image files on disk, without the database."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from nsfw_moderation import imaging, policy
from nsfw_moderation.backends import Classifier, ModelUnavailable, get_backend
from nsfw_moderation.conf import conf
from nsfw_moderation.tasks import decode_limits

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
            decoded.append((path, _load(path)))
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


def _load(path: Path) -> list[Image.Image]:
    with path.open("rb") as handle:
        data = handle.read(conf.MAX_FILE_SIZE + 1)
    return imaging.load_frames(data, decode_limits())


def _result(path: Path, frame_scores: list[dict[str, float]], backend: Classifier) -> FileResult:
    # Like the worker: an animation is as unsafe as its worst frame.
    worst = max(frame_scores, key=policy.unsafe_score)
    score = policy.unsafe_score(worst)
    return FileResult(str(path), str(policy.verdict_for(score)), score, backend.name, worst)


def load_backend_or_fail(returncode: int = USAGE) -> Classifier:
    try:
        return get_backend()
    except ModelUnavailable as exc:
        raise CommandError(str(exc), returncode=returncode) from exc


class Command(BaseCommand):
    help = (
        "Classify image files or folders on disk with the configured model, without touching "
        "the database. Folders are searched recursively for image files. Prints a table "
        "(or JSON with --json). Exit status: 0 nothing at or above FLAG_THRESHOLD; "
        "1 at least one image at or above it; 2 usage error (missing path, model cannot be "
        "loaded); 3 some files could not be read or decoded and none of the others was flagged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Image files or folders.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print JSON (path, verdict, score, scores, model, error) instead of a table.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Images per classifier pass (default: BATCH_SIZE).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = conf.BATCH_SIZE if options["batch_size"] is None else options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.", returncode=USAGE)
        files = find_files(options["paths"])
        if not files:
            raise CommandError("No image files found in the given paths.", returncode=USAGE)
        backend = load_backend_or_fail()
        results = classify_files(files, backend, batch_size)
        if options["json"]:
            collected = list(results)
            self.stdout.write(json.dumps([asdict(r) for r in collected], indent=2))
        else:
            collected = list(self._print_table(results, files))
        self._exit(collected)

    def _print_table(
        self, results: Iterable[FileResult], files: Sequence[Path]
    ) -> Iterator[FileResult]:
        width = max(len("path"), *(len(str(p)) for p in files))
        self.stdout.write(f"{'path':<{width}}  {'verdict':<8}  {'score':>6}  model")
        for result in results:
            score = "-" if result.score is None else f"{result.score:.4f}"
            line = f"{result.path:<{width}}  {result.verdict:<8}  {score:>6}  {result.model}"
            self.stdout.write(self.style.ERROR(line) if result.verdict != "allowed" else line)
            if result.error:
                self.stderr.write(f"{result.path}: {result.error}")
            yield result

    def _exit(self, results: Sequence[FileResult]) -> None:
        flagged = sum(1 for r in results if r.score is not None and r.score >= conf.FLAG_THRESHOLD)
        unreadable = sum(1 for r in results if r.error)
        if flagged:
            raise CommandError(
                f"{flagged} of {len(results)} image(s) at or above the flag threshold "
                f"{conf.FLAG_THRESHOLD:g}.",
                returncode=FLAGGED,
            )
        if unreadable:
            raise CommandError(
                f"{unreadable} of {len(results)} file(s) could not be classified.",
                returncode=UNREADABLE,
            )
