"""The gallery's small REST API (only where Django REST framework is installed).

``/api/photos/`` lists the photos, newest first, each image's URL only while
moderation lets it be seen (``null`` otherwise); ``/api/moderation/`` holds
the uploader's endpoints: the status of their photos, their statements of
reasons, an appeal. With drf-spectacular, ``/api/schema/`` describes it all.
"""

from __future__ import annotations

import importlib.util

from django.urls import include, path
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from demo_site.gallery.models import Photo
from nsfw_moderation.contrib.rest_framework.fields import ModeratedImageField


class PhotoSerializer(serializers.ModelSerializer):
    image = ModeratedImageField(read_only=True)

    class Meta:
        model = Photo
        fields = ["id", "title", "image", "created"]


class PhotoPagination(PageNumberPagination):
    page_size = 24


class PhotoList(generics.ListAPIView):
    """Every photo; the hidden ones with ``"image": null``."""

    queryset = Photo.objects.all()
    serializer_class = PhotoSerializer
    pagination_class = PhotoPagination


urlpatterns = [
    path("photos/", PhotoList.as_view(), name="api-photos"),
    path("moderation/", include("nsfw_moderation.contrib.rest_framework.urls")),
]

if importlib.util.find_spec("drf_spectacular"):
    from drf_spectacular.views import SpectacularAPIView

    urlpatterns.append(path("schema/", SpectacularAPIView.as_view(), name="api-schema"))
