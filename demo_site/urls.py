from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from demo_site.gallery import views

urlpatterns = [
    path("", include("demo_site.gallery.urls")),
    path("admin/", admin.site.urls),
    # Statements of reasons and appeals, for the owners of blocked or rejected images.
    path("moderation/", include("nsfw_moderation.urls")),
    # Raw uploads, for staff only (the admin links to them). The public gallery
    # serves images through a view that checks the moderation verdict first.
    path("media/<path:path>", views.staff_media, name="media"),
]
