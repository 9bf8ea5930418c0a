"""A host project's REST API for tests/test_drf.py: moderated images in lists, owner endpoints.

Mounted at ``/api/`` by tests/urls.py where Django REST framework is installed.
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import generics, serializers
from rest_framework.pagination import LimitOffsetPagination

from nsfw_moderation.contrib.rest_framework.fields import ModeratedImageField
from nsfw_moderation.contrib.rest_framework.filters import VisibleOnlyFilter
from tests.testapp.models import Photo, Profile

PLACEHOLDER = "/static/hidden.png"


class PhotoSerializer(serializers.ModelSerializer):
    image = ModeratedImageField(read_only=True)

    class Meta:
        model = Photo
        fields = ["id", "title", "image"]


class PhotoList(generics.ListAPIView):
    """Every photo; ``?limit=`` pages them (a page is a list, no longer a queryset)."""

    queryset = Photo.objects.order_by("pk")
    serializer_class = PhotoSerializer
    pagination_class = LimitOffsetPagination


class VisiblePhotoList(PhotoList):
    filter_backends = [VisibleOnlyFilter]


class PhotoUploadSerializer(serializers.ModelSerializer):
    image = ModeratedImageField()  # writable: uploads are validated as images

    class Meta:
        model = Photo
        fields = ["id", "title", "image"]


class PhotoUpload(generics.CreateAPIView):
    serializer_class = PhotoUploadSerializer
    permission_classes = []


class ProfileSerializer(serializers.ModelSerializer):
    avatar = ModeratedImageField(read_only=True, placeholder=PLACEHOLDER)
    banner = ModeratedImageField(read_only=True)

    class Meta:
        model = Profile
        fields = ["id", "name", "avatar", "banner"]


class ProfileList(generics.ListAPIView):
    queryset = Profile.objects.order_by("pk")
    serializer_class = ProfileSerializer


urlpatterns = [
    path("photos/", PhotoList.as_view()),
    path("visible-photos/", VisiblePhotoList.as_view()),
    path("upload/", PhotoUpload.as_view()),
    path("profiles/", ProfileList.as_view()),
    path("moderation/", include("nsfw_moderation.contrib.rest_framework.urls")),
    path("schema/", SpectacularAPIView.as_view()),
]
