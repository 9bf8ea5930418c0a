from __future__ import annotations

import importlib.util

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("moderation/", include("nsfw_moderation.urls")),
]
# A host's REST API (tests/api.py), where Django REST framework is installed.
if importlib.util.find_spec("rest_framework") and importlib.util.find_spec("drf_spectacular"):
    urlpatterns.append(path("api/", include("tests.api")))
