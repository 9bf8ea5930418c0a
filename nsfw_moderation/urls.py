"""URLs of the owner's pages (:mod:`nsfw_moderation.appeals`), for the host's ``include()``."""

from __future__ import annotations

from django.urls import path

from nsfw_moderation import appeals

app_name = "nsfw_moderation"

urlpatterns = [
    path("decisions/", appeals.statement_list_view, name="statements"),
    path("decisions/<uuid:public_id>/", appeals.statement_view, name="statement"),
    path(
        "decisions/<uuid:public_id>/preview/",
        appeals.statement_preview_view,
        name="statement_preview",
    ),
]
