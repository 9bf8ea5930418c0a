from __future__ import annotations

import importlib.util

from django.contrib import admin
from django.urls import include, path

from nsfw_moderation.media import serve_visible

urlpatterns = [
    path("", include("demo_site.gallery.urls")),
    path("admin/", admin.site.urls),
    # Statements of reasons and appeals, for the owners of blocked or rejected images.
    path("moderation/", include("nsfw_moderation.urls")),
    # Uploads, to anyone, only while moderation lets them be seen: flagged,
    # blocked, rejected and pending files are a 404, for staff too (moderators
    # see the review pages' safe previews instead).
    path("media/<path:path>", serve_visible, name="media"),
]

# The gallery's REST API, where Django REST framework is installed (pip install
# "nsfw-moderation[drf]").
if importlib.util.find_spec("rest_framework"):
    urlpatterns.append(path("api/", include("demo_site.gallery.api")))
