from __future__ import annotations

from django import forms

from demo_site.gallery.models import Photo
from nsfw_moderation.validators import MaxFileSizeValidator, validate_image_or_video


class PhotoForm(forms.ModelForm):
    # Size first: the format check then reads the header of a file of sane size.
    # A short clip is welcome too: the worker samples its frames.
    image = forms.FileField(
        validators=[MaxFileSizeValidator(), validate_image_or_video],
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,video/*"}),
    )

    class Meta:
        model = Photo
        fields = ["title", "image"]
