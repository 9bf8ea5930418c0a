from __future__ import annotations

from django import forms

from demo_site.gallery.models import Photo


class PhotoForm(forms.ModelForm):
    class Meta:
        model = Photo
        fields = ["title", "image"]
        widgets = {"image": forms.ClearableFileInput(attrs={"accept": "image/*"})}
