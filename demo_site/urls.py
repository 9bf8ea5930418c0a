from __future__ import annotations

import importlib.util

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from nsfw_moderation.media import serve_visible

urlpatterns = [
    path("", include("demo_site.gallery.urls")),
    path("admin/", admin.site.urls),
    # Site users log in to own their uploads and to read and appeal decisions.
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="gallery/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
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
