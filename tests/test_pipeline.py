"""A batch goes through the worker in parts: the classifier runs while the next part is decoded."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection
from PIL import Image

from nsfw_moderation import banks, enqueue, hashing, previews
from nsfw_moderation.models import ModeratedImage, Preview, Status, Verdict
from nsfw_moderation.worker import pipeline, tasks
from tests import backends
from tests.conftest import moderation
from tests.images import red
from tests.test_sqlite_contention import OtherWriter
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("colour_backend")]

#: What waiting for another thread may take before a test gives up on it.
PATIENCE = 10


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Photos saved but left queued: the test runs their task itself."""
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)

    def create(count: int) -> list[ModeratedImage]:
        for index in range(count):
            Photo.objects.create(image=red(f"r{index}.png"))
        return list(ModeratedImage.objects.order_by("pk"))

    return create


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (7, [7]), (8, [4, 4]), (11, [6, 5]), (16, [4, 4, 4, 4]), (32, [8] * 4)],
)
def test_a_batch_is_split_into_parts_of_a_few_files(count, sizes):
    rows = list(range(count))
    split = pipeline.parts(rows)  # type: ignore[arg-type]
    assert [len(part) for part in split] == sizes
    assert [row for part in split for row in part] == rows


class WaitsForTheNextPart(backends.ColourBackend):
    """Classifies the first part only once the worker has begun decoding the second."""

    decoding_second = threading.Event()
    threads: list[str] = []
    saw_the_second_part_decoding: list[bool] = []

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        self.threads.append(threading.current_thread().name)
        if not self.saw_the_second_part_decoding:
            self.saw_the_second_part_decoding.append(self.decoding_second.wait(PATIENCE))
        return super().classify(images)


def test_the_classifier_runs_while_the_next_part_is_decoded(queued, monkeypatch):
    rows = queued(8)
    first_part = len(pipeline.parts(rows)[0])
    read_and_decode = pipeline._read_and_decode
    reads = itertools.count(1)

    def watched(row: ModeratedImage, *args: Any) -> Any:
        if next(reads) > first_part:  # parts are decoded one after the other
            WaitsForTheNextPart.decoding_second.set()
        return read_and_decode(row, *args)

    monkeypatch.setattr(pipeline, "_read_and_decode", watched)
    WaitsForTheNextPart.decoding_second.clear()
    WaitsForTheNextPart.threads.clear()
    WaitsForTheNextPart.saw_the_second_part_decoding.clear()

    with moderation(BACKEND="tests.test_pipeline.WaitsForTheNextPart"):
        counts = tasks.classify(rows[0].pk)

    assert counts["done"] == 8
    assert WaitsForTheNextPart.saw_the_second_part_decoding == [True]
    # Two parts, each on the classifying thread, never on the one that decodes and stores.
    assert len(WaitsForTheNextPart.threads) == 2
    assert threading.current_thread().name not in WaitsForTheNextPart.threads
    assert ModeratedImage.objects.filter(status=Status.DONE).count() == 8


class FailsOnTheSecondPart(backends.ColourBackend):
    calls = 0

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("out of memory")
        return super().classify(images)


def test_a_part_the_classifier_fails_on_is_retried_and_the_others_are_kept(queued):
    rows = queued(8)
    FailsOnTheSecondPart.calls = 0

    with moderation(BACKEND="tests.test_pipeline.FailsOnTheSecondPart"):
        counts = tasks.classify(rows[0].pk)

    assert (counts["done"], counts["retrying"]) == (4, 4)
    kept = (Status.DONE, Verdict.FLAGGED, "")
    retried = (Status.QUEUED, Verdict.PENDING, pipeline.CLASSIFIER_FAILED)
    outcomes = sorted(ModeratedImage.objects.values_list("status", "verdict", "error"))
    assert outcomes == [kept] * 4 + [retried] * 4


def test_what_is_made_ahead_is_what_the_row_gets(queued, monkeypatch):
    """Hashes and the preview are made on the decoding threads; the row gets the same."""
    rows = queued(8)
    made_on: list[str] = []
    for module, name in ((hashing, "pdq"), (previews, "preview_of")):
        monkeypatch.setattr(module, name, on_which_thread(getattr(module, name), made_on))

    tasks.classify(rows[0].pk)

    monkeypatch.undo()
    assert made_on
    assert threading.current_thread().name not in made_on
    for row in ModeratedImage.objects.all():
        frame = row.content_object.image.open("rb")
        with Image.open(frame) as image:
            image.load()
            expected_preview = previews.preview_of([image.convert("RGB")], 0)
        assert row.status == Status.DONE
        assert bytes(Preview.objects.get(image=row).jpeg) == expected_preview
        if hashing.available():
            assert row.pdq == hashing.pdq(image).hex


def on_which_thread(function: Any, threads: list[str]) -> Any:
    def recorded(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return function(*args)

    return recorded


def test_what_cannot_be_made_ahead_is_made_again_where_failure_counts(queued, monkeypatch):
    pytest.importorskip("pdqhash")
    rows = queued(8)
    pdq = hashing.pdq
    main = threading.current_thread()

    def only_here(image: Image.Image) -> hashing.Hash:
        if threading.current_thread() is not main:
            raise MemoryError("the decoding thread ran out")
        return pdq(image)

    monkeypatch.setattr(hashing, "pdq", only_here)
    assert tasks.classify(rows[0].pk)["done"] == 8
    assert all(row.pdq for row in ModeratedImage.objects.all())


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock")
def test_a_task_with_nothing_to_claim_does_not_wait_for_the_write_lock(queued):
    rows = queued(2)
    tasks.classify(rows[0].pk)  # both rows done: the second row's own task finds nothing
    writer = OtherWriter()
    writer.take()
    try:
        assert tasks.classify(rows[1].pk) == {"claimed": 0}
        assert writer.thread is not None
        assert writer.thread.is_alive()  # still holding the lock: nothing waited for it
    finally:
        writer.done()


class CountsCallsAtOnce(backends.ColourBackend):
    """Fails its first call; the others take a while, counting the calls running at once."""

    lock = threading.Lock()
    calls = 0
    running = 0
    most = 0

    def classify(self, images: Sequence[Image.Image]) -> list[dict[str, float]]:
        cls = type(self)
        with cls.lock:
            cls.calls += 1
            cls.running += 1
            cls.most = max(cls.most, cls.running)
            first = cls.calls == 1
        try:
            if first:
                raise RuntimeError("out of memory")
            time.sleep(0.3)
            return super().classify(images)
        finally:
            with cls.lock:
                cls.running -= 1


def test_the_classifier_runs_one_call_at_a_time_even_when_a_retry_runs_inline(monkeypatch):
    """QUEUE="sync" classifies a retried row at once, inside the batch that failed it."""
    monkeypatch.setattr(enqueue, "enqueue", lambda pk, delay=0: None)
    for index in range(8):
        Photo.objects.create(image=red(f"r{index}.png"))
    monkeypatch.undo()
    CountsCallsAtOnce.calls = CountsCallsAtOnce.running = CountsCallsAtOnce.most = 0

    with moderation(BACKEND="tests.test_pipeline.CountsCallsAtOnce", QUEUE="sync"):
        tasks.classify(ModeratedImage.objects.order_by("pk")[0].pk)

    assert CountsCallsAtOnce.calls > 2  # the failed part's rows were retried inline
    assert CountsCallsAtOnce.most == 1
    assert set(ModeratedImage.objects.values_list("status", flat=True)) == {Status.DONE}


def test_without_a_model_every_part_waits(queued):
    rows = queued(8)
    with moderation(BACKEND="tests.backends.BrokenBackend"):
        counts = tasks.classify(rows[0].pk)
    assert (counts["claimed"], counts["retrying"]) == (8, 8)
    statuses = set(ModeratedImage.objects.values_list("status", "verdict", "error"))
    assert statuses == {(Status.QUEUED, Verdict.PENDING, pipeline.CLASSIFIER_UNAVAILABLE)}


def test_the_hash_banks_are_read_once_per_batch(queued, monkeypatch):
    pytest.importorskip("pdqhash")
    rows = queued(16)
    reads: list[str] = []
    monkeypatch.setattr(banks, "current_index", on_which_thread(banks.current_index, reads))
    with moderation(BATCH_SIZE=16):
        assert tasks.classify(rows[0].pk)["done"] == 16
    assert len(pipeline.parts(rows)) == 4
    assert len(reads) == 1
