"""URLs of the owner's endpoints (:mod:`.views`), for the host's ``include()`` under its API.

::

    path("api/moderation/", include("nsfw_moderation.contrib.rest_framework.urls")),
"""

from __future__ import annotations

from django.urls import path

from nsfw_moderation.contrib.rest_framework import views

app_name = "nsfw_moderation_api"

urlpatterns = [
    path("statements/", views.StatementList.as_view(), name="statements"),
    path("statements/<uuid:public_id>/", views.StatementDetail.as_view(), name="statement"),
    path("statements/<uuid:public_id>/appeal/", views.AppealCreate.as_view(), name="appeal"),
    path("status/<str:model>/<str:object_id>/", views.ObjectStatus.as_view(), name="status"),
]
