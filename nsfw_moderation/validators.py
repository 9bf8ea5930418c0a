"""Validators for upload forms: refuse what is not a raster image before it is saved.

Django's ``ImageField`` accepts any file Pillow can open under an extension
Pillow knows, so a valid PNG named ``x.pdf`` (or ``.eps``) passes, and a browser
or a storage then serves it by its name. :func:`validate_raster_image` refuses
a name that would have the file taken for something other than an image, and
lets a raster image named as another raster type (a PNG named ``.jpg``)
through, as the worker does: browsers show it as the image it is. These
validators read the file's header and its size only: no pixel is decoded in
the web process::

    from nsfw_moderation.validators import MaxFileSizeValidator, validate_raster_image

    class PhotoForm(forms.ModelForm):
        class Meta:
            model = Photo
            fields = ["image"]

        image = forms.ImageField(validators=[MaxFileSizeValidator(), validate_raster_image])

The worker checks the same things again (a file can reach storage without a
form), so these are about telling the uploader early, not about safety alone.
"""

from __future__ import annotations

from typing import IO, Any

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from nsfw_moderation import formats, imaging, video
from nsfw_moderation.conf import conf


def validate_raster_image(file: Any) -> None:
    """Accept only a raster image in a format the worker decodes, named as an image."""
    name = str(getattr(file, "name", "") or "")
    try:
        with _rewound(file) as handle:
            imaging.identify(handle, name)
    except imaging.NameMismatch:
        raise ValidationError(
            _("The file’s name does not match its contents: name it for the image it holds."),
            code="name_mismatch",
        ) from None
    except imaging.ImageDecodeError:
        raise ValidationError(
            _("Upload an image in a raster format such as JPEG, PNG, GIF or WebP."),
            code="not_a_raster_image",
        ) from None


def validate_image_or_video(file: Any) -> None:
    """Accept a raster image (:func:`validate_raster_image`) or a video named as a video.

    A video is told apart by its first bytes, as the worker does; nothing is
    decoded here, and the worker checks the clip's bounds when it samples it.
    """
    name = str(getattr(file, "name", "") or "")
    with _rewound(file) as handle:
        head = handle.read(video.HEAD_BYTES)
    if not video.looks_like_video(head):
        validate_raster_image(file)
    elif formats.names_video(name) is False:
        raise ValidationError(
            _("The file’s name does not match its contents: name it for the video it holds."),
            code="name_mismatch",
        )


class _rewound:
    """The file, read from its start and left at its start for whoever reads it next."""

    def __init__(self, file: Any) -> None:
        self.file: IO[bytes] = file

    def __enter__(self) -> IO[bytes]:
        self.file.seek(0)
        return self.file

    def __exit__(self, *exc: object) -> None:
        self.file.seek(0)


@deconstructible
class MaxFileSizeValidator:
    """Refuse files over ``limit`` bytes (default: the ``MAX_FILE_SIZE`` setting)."""

    code = "file_too_large"

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit

    def __call__(self, file: Any) -> None:
        limit = conf.MAX_FILE_SIZE if self.limit is None else self.limit
        size = int(getattr(file, "size", 0) or 0)
        if size > limit:
            raise ValidationError(
                _("The file is %(size)s; files of up to %(limit)s are accepted."),
                code=self.code,
                params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MaxFileSizeValidator) and other.limit == self.limit

    def __hash__(self) -> int:
        return hash((type(self), self.limit))
