"""What a file's name claims: the image formats or video its extension stands for (no decoding).

Shared by the worker, which refuses names that are no image's, and the admin
(a web process), which says when a raster image carries another raster
format's name. The table is Pillow's registered extensions of the formats the
worker accepts, written out so that the web process never imports Pillow;
``tests/test_hostile_media.py`` keeps it equal to what Pillow registers.
"""

from __future__ import annotations

import os

#: The extensions of each accepted image format (HEIF's where pillow-heif registers them).
EXTENSIONS: dict[str, frozenset[str]] = {
    "AVIF": frozenset({".avif", ".avifs"}),
    "BMP": frozenset({".bmp"}),
    "DIB": frozenset({".dib"}),
    "GIF": frozenset({".gif"}),
    "HEIF": frozenset({".heic", ".heics", ".heif", ".heifs", ".hif"}),
    "JPEG": frozenset({".jfif", ".jpe", ".jpg", ".jpeg"}),
    "JPEG2000": frozenset({".jp2", ".j2k", ".jpc", ".jpf", ".jpx", ".j2c"}),
    "MPO": frozenset({".mpo"}),
    "PNG": frozenset({".png", ".apng"}),
    "PPM": frozenset({".pbm", ".pgm", ".ppm", ".pnm", ".pfm"}),
    "TGA": frozenset({".tga", ".icb", ".vda", ".vst"}),
    "TIFF": frozenset({".tif", ".tiff"}),
    "WEBP": frozenset({".webp"}),
}

#: Extensions of the video containers the worker reads (``nsfw_moderation.video``).
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".qt",
        ".3gp",
        ".3g2",
        ".webm",
        ".mkv",
        ".avi",
        ".flv",
        ".ogv",
        ".ogg",
        ".ts",
        ".m2ts",
        ".mts",
        ".mpg",
        ".mpeg",
        ".vob",
        ".wmv",
        ".asf",
        ".ivf",
    }
)

# Pillow tells these apart, but a name claiming one is honest about the other:
# cameras write multi-picture JPEGs under .jpg.
_SAME_FAMILY = {"JPEG": frozenset({"JPEG", "MPO"}), "MPO": frozenset({"JPEG", "MPO"})}


def formats_for_name(name: str) -> frozenset[str] | None:
    """The image formats that ``name``'s extension claims.

    ``None`` for a name without an extension, which claims nothing: such a file
    is served as ``application/octet-stream``. An empty set for an extension
    that no accepted image format uses (``.pdf``, ``.svg``, ``.html``).
    """
    extension = os.path.splitext(name)[1].lower()
    if not extension:
        return None
    for image_format, extensions in EXTENSIONS.items():
        if extension in extensions:
            return _SAME_FAMILY.get(image_format, frozenset({image_format}))
    return frozenset()


def names_video(name: str) -> bool | None:
    """Whether ``name``'s extension is a video container's (``None``: it has no extension)."""
    extension = os.path.splitext(name)[1].lower()
    if not extension:
        return None
    return extension in VIDEO_EXTENSIONS


def named_as_another_format(image_format: str, name: str) -> str:
    """The extension of ``name`` where it is a raster image's but not ``image_format``'s, else "".

    ``".jpg"`` for a PNG named ``shot.jpg``: what a moderator is told next to
    the format read from the bytes.
    """
    claimed = formats_for_name(name)
    if not claimed or image_format in claimed:
        return ""
    return os.path.splitext(name)[1].lower()
