"""PDQ perceptual hashes and a fast index over many of them. Independent of Django.

PDQ (Meta's "perceptual hash, quality") reduces a picture to 256 bits; two
pictures whose hashes differ in at most 31 bits are, by the industry's
convention, the same picture (re-encoded, resized, slightly cropped). Each hash
comes with a quality from 0 to 100: flat or nearly flat images give weak hashes
that match unrelated pictures, so hashes of quality below :data:`MIN_QUALITY`
are never used for matching.

Hashes are written as 64 lowercase hex digits, most significant bit first, as
ThreatExchange and its hasher-matcher-actioner write them.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image

#: The conventional PDQ match threshold (Hamming distance, inclusive).
DEFAULT_DISTANCE = 31

#: Hashes of a lower quality are too weak to match on.
MIN_QUALITY = 50

#: Larger images are scaled down to fit this square before hashing.
HASH_SIZE = 512

#: Below this many entries a plain scan is faster than the multi-index.
SCAN_BELOW = 20_000

_HEX = re.compile(r"^[0-9a-f]{64}$")
_CHUNKS = 16  # 16-bit chunks of a 256-bit hash
_ONE_BIT = np.array([0] + [1 << bit for bit in range(16)], dtype=np.uint16)


class Hash(NamedTuple):
    hex: str
    quality: int


def available() -> bool:
    """Whether the ``pdqhash`` package is installed."""
    return importlib.util.find_spec("pdqhash") is not None


def pdq(image: Image.Image) -> Hash:
    """The PDQ hash of ``image`` and its quality."""
    import pdqhash

    # PDQ reduces the picture to 64×64 anyway: a copy scaled down first costs
    # a small fraction of hashing every pixel of a large frame (docs/benchmarks.md).
    small = image.convert("RGB")
    if max(small.size) > HASH_SIZE:
        small.thumbnail((HASH_SIZE, HASH_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    pixels = np.asarray(small)
    bits, quality = pdqhash.compute(pixels)
    return Hash(np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality))


def is_pdq(value: str) -> bool:
    return bool(_HEX.match(value))


def to_words(hexes: list[str]) -> np.ndarray:
    """Hex hashes as an ``(n, 4)`` array of big-endian 64-bit words."""
    if not hexes:
        return np.zeros((0, 4), dtype=np.uint64)
    raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=">u8")
    return raw.astype(np.uint64).reshape(-1, 4)


def distances(queries: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The ``(len(queries), len(hashes))`` matrix of Hamming distances."""
    xor = queries[:, None, :] ^ hashes[None, :, :]
    return np.bitwise_count(xor).sum(axis=2, dtype=np.uint16)


@dataclass
class Index:
    """Hashes with a payload each (an entry id), searchable by Hamming distance.

    A lookup in a large index does not scan every hash: it uses multi-index
    hashing. The 256 bits are cut into 16 chunks of 16 bits; two hashes within
    distance 31 differ in at most one bit in at least one chunk (pigeonhole),
    so only hashes that share a chunk exactly or up to one bit are candidates,
    found by binary search in one sorted array per chunk, then checked in full.
    That holds for any distance under 32; larger distances fall back to a scan.
    """

    words: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        self._order: np.ndarray | None = None  # (16, n): positions sorted by each chunk
        self._starts = np.zeros(0, dtype=np.int64)  # (16, 65537): where each value begins
        if len(self.ids) >= SCAN_BELOW:
            self._build()

    @classmethod
    def of(cls, hexes: list[str], ids: list[int]) -> Index:
        return cls(to_words(hexes), np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def _build(self) -> None:
        chunks = self.words.view(np.uint16).reshape(-1, _CHUNKS)
        self._order = np.argsort(chunks, axis=0, kind="stable").T.astype(np.int32)
        counts = [np.bincount(chunks[:, column], minlength=1 << 16) for column in range(_CHUNKS)]
        self._starts = np.zeros((_CHUNKS, (1 << 16) + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=self._starts[:, 1:])

    def search(self, query: str, max_distance: int) -> list[tuple[int, int]]:
        """``(id, distance)`` of every hash within ``max_distance`` of ``query``, nearest first."""
        positions, found = self.hits(query, max_distance)
        hits = sorted(zip(found.tolist(), self.ids[positions].tolist(), strict=True))
        return [(entry, distance) for distance, entry in hits]

    def hits(self, query: str, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the hashes within ``max_distance`` of ``query``, and their distances."""
        words = to_words([query])
        if self._order is None or max_distance >= 2 * _CHUNKS:
            positions = np.arange(len(self.ids))
        else:
            positions = self._candidates(words)
        found = distances(words, self.words[positions])[0]
        near = found <= max_distance
        return positions[near], found[near]

    def _candidates(self, words: np.ndarray) -> np.ndarray:
        """Positions of hashes equal to the query, up to one bit, in at least one chunk."""
        assert self._order is not None
        query = words.view(np.uint16).reshape(_CHUNKS)
        probes = (query[:, None] ^ _ONE_BIT[None, :]).astype(np.int64)  # (16, 17)
        columns = np.repeat(np.arange(_CHUNKS), len(_ONE_BIT))
        lows = self._starts[columns, probes.ravel()]
        lengths = self._starts[columns, probes.ravel() + 1] - lows
        # Every bucket's range of sorted positions, in one vector: no loop per bucket.
        ends = np.cumsum(lengths)
        offsets = np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths, lengths)
        sorted_positions = np.repeat(lows, lengths) + offsets
        return np.unique(self._order[np.repeat(columns, lengths), sorted_positions])
