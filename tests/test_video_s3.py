"""A 200 MB clip on S3 is moderated by ranged reads, never downloaded whole.

A local S3-compatible server (moto's) and django-storages' ``S3Storage``: the
clip is a short real video beside a 200 MB sound track of silence, so that it
is big where it counts (the object) and cheap to make. Bytes are counted as
S3 answers them, by a botocore event handler, not by our own reader.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")
pytest.importorskip("moto")
pytest.importorskip("storages")

import av
import boto3
from moto.server import ThreadedMotoServer
from storages.backends.s3 import S3Storage

from nsfw_moderation import registry, storage
from nsfw_moderation.models import ModeratedImage, Status, Verdict, VideoFrame
from tests import videos
from tests.testapp.models import Document

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("colour_backend"),
]

SIZE = 200 * 1024 * 1024


@pytest.fixture
def s3() -> Iterator[S3Storage]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options: dict[str, Any] = {
        "bucket_name": "uploads",
        "endpoint_url": f"http://{host}:{port}",
        "access_key": "testing",
        "secret_key": "testing",
        "region_name": "us-east-1",
    }
    try:
        boto3.client(
            "s3",
            endpoint_url=options["endpoint_url"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket="uploads")
        yield S3Storage(**options)
    finally:
        server.stop()


def big_clip(path: Path) -> None:
    """20 s of video (unsafe from 11 s) and ``SIZE`` bytes of silence interleaved with it."""
    clip = videos.clip(
        [(0.0, videos.SAFE), (11.0, videos.UNSAFE), (12.0, videos.SAFE)], seconds=20, gop=10
    )
    with av.open(io.BytesIO(clip)) as source, av.open(str(path), "w", format="mov") as out:
        picture = out.add_stream_from_template(source.streams.video[0])
        sound = out.add_stream("pcm_s16le", rate=48_000)
        chunks = 100
        seconds = 20 / chunks
        silence = bytes(SIZE // chunks)
        for index in range(chunks):
            packet = av.Packet(silence)
            packet.stream = sound
            packet.time_base = Fraction(1, 48_000)
            packet.pts = packet.dts = round(index * seconds * 48_000)
            out.mux(packet)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = picture
                out.mux(packet)


def test_a_200_mb_clip_on_s3_is_moderated_by_ranged_reads(
    s3: S3Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.mov"
    big_clip(path)
    assert path.stat().st_size > SIZE
    fetched: list[int] = []

    def count(parsed: dict[str, Any], **kwargs: Any) -> None:
        fetched.append(int(parsed.get("ContentLength", 0)))

    events = s3.connection.meta.client.meta.events
    events.register("after-call.s3.GetObject", count)
    monkeypatch.setattr(Document._meta.get_field("file"), "storage", s3)
    # One PUT: moto assembles a multipart upload of 200 MB slowly.
    with path.open("rb") as handle:
        s3.bucket.put_object(Key="docs/big.mov", Body=handle)
    document = Document.objects.create(file="docs/big.mov")
    (field_name,) = registry.fields_for(Document)
    row = ModeratedImage.objects.of_object(document, field_name).get()
    assert (row.status, row.verdict) == (Status.DONE, Verdict.FLAGGED), row.error
    assert row.frame_time == 11.0
    assert VideoFrame.of(row).count() >= 10
    # The object is 200 MB; what S3 sent is a small fraction of it. The decoder
    # reads every video packet once (sampling decodes forward), and each read
    # fetches a 256 KiB range around it: 17.8 MB here, of 200 MB.
    assert 0 < sum(fetched) < path.stat().st_size / 10
    assert isinstance(storage.RangedFile.of(s3, row.file_name), storage.RangedFile)
