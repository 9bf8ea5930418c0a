"""A Wagtail site's URLs, and no Django admin: the review pages live in Wagtail's admin."""

from __future__ import annotations

from django.urls import include, path, re_path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.images.views.serve import ServeView

urlpatterns = [
    path("cms/", include(wagtailadmin_urls)),
    re_path(
        r"^images/([^/]*)/(\d*)/([^/]*)/[^/]*$", ServeView.as_view(), name="wagtailimages_serve"
    ),
    path("", include(wagtail_urls)),
]
