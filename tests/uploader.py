"""One uploading web process for the load tests: ``python -m tests.uploader COUNT TAG``.

Saves COUNT photos (each a distinct generated PNG) through the ORM, as a view
would, and prints JSON: every save's duration, every save that failed, and
which of the model's libraries (torch, openvino …) the process imported.
"""

from __future__ import annotations

import json
import os
import sys
import time

#: The model's libraries, and the worker code that would import them.
MODEL_MODULES = ("torch", "transformers", "openvino", "onnxruntime", "nsfw_moderation.worker")


def main(count: int, tag: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from tests.images import image_file
    from tests.testapp.models import Photo

    seed = sum(map(ord, tag))
    durations: list[float] = []
    failures: list[str] = []
    for i in range(count):
        image = image_file(f"{tag}-{i}.png", color=((seed + i) % 256, (7 * i) % 256, 90))
        start = time.perf_counter()
        try:
            Photo.objects.create(title=tag, image=image)
        except Exception as exc:
            failures.append(repr(exc))
        durations.append(time.perf_counter() - start)
    # The web process never imports the model's libraries, whatever the queue.
    model_modules = sorted(name for name in MODEL_MODULES if name in sys.modules)
    report = {"durations": durations, "failures": failures, "model_modules": model_modules}
    print(json.dumps(report))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
