"""Decode a batch of 16 hostile clips as the worker does, then print the process's peak RSS (bytes).

Run in a fresh process (``python -m tests.video_rss FOLDER``) so that the figure
is the batch's alone: the worker's own decoder (four threads sharing one pixel
budget, :mod:`nsfw_moderation.worker.pipeline`) on the clips in FOLDER, which
the caller encoded (encoding a 4K clip costs more memory than decoding it, and
would count here), not saved anywhere, so no database is needed.
"""

from __future__ import annotations

import io
import itertools
import os
import resource
import sys
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    from nsfw_moderation.models import ModeratedImage
    from nsfw_moderation.worker import pipeline

    clips = [path.read_bytes() for path in sorted(Path(sys.argv[1]).iterdir())]
    batch = list(itertools.islice(itertools.cycle(clips), 16))
    decoder = pipeline._Decoder(len(batch))

    def decode(data: bytes) -> int:
        result = pipeline._decode_video(
            ModeratedImage(file_name="clip"), io.BytesIO(data), decoder.budget
        )
        return len(result.frames)

    with decoder:
        frames = sum(decoder.map(decode, batch))
    sys.stdout.write(f"{frames} {peak_rss()}\n")


def peak_rss() -> int:
    """This process's peak resident set, in bytes, since it started this program.

    Linux keeps ``ru_maxrss`` across ``execve``: a process forked from a big
    parent (a test run holding torch and its models) reports the parent's size
    there. ``VmHWM`` belongs to the new program's memory alone.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


if __name__ == "__main__":
    main()
