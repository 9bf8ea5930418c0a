from __future__ import annotations

from django import forms

from demo_site.gallery.models import Photo
from nsfw_moderation.validators import MaxFileSizeValidator, validate_raster_image


class PhotoForm(forms.ModelForm):
    # Size first: the raster check then reads the header of a file of sane size.
    image = forms.ImageField(
        validators=[MaxFileSizeValidator(), validate_raster_image],
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )

    class Meta:
        model = Photo
        fields = ["title", "image"]
