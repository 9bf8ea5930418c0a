"""Wagtail hooks: the review pages' URLs and menu items, the permission, the image chooser."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import include, path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from nsfw_moderation.admin.base import may_review
from nsfw_moderation.conf import conf
from nsfw_moderation.contrib.wagtail import views
from nsfw_moderation.contrib.wagtail.withheld import shown_only

urlpatterns = [
    path("", views.ReviewQueueView.as_view(), name="review"),
    path("decide/", views.decide_view, name="decide"),
    path("preferences/", views.preferences_view, name="preferences"),
    path("dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("appeals/", views.AppealQueueView.as_view(), name="appeals"),
    path("appeals/decide/", views.decide_appeal_view, name="decide_appeal"),
    path("<int:pk>/preview/", views.preview_view, name="preview"),
]


@hooks.register("register_admin_urls")
def register_admin_urls() -> list[Any]:
    return [path("image-moderation/", include((urlpatterns, views.NAMESPACE)))]


class ReviewMenuItem(MenuItem):
    def is_shown(self, request: HttpRequest) -> bool:
        return may_review(request.user)


@hooks.register("register_admin_menu_item")
def register_menu_item() -> MenuItem:
    return ReviewMenuItem(
        _("Image moderation"),
        reverse(f"{views.NAMESPACE}:review"),
        name="image-moderation",
        icon_name="warning",
        order=310,
    )


@hooks.register("register_admin_menu_item")
def register_appeals_menu_item() -> MenuItem:
    return ReviewMenuItem(
        _("Appeal queue"),
        reverse(f"{views.NAMESPACE}:appeals"),
        name="image-appeals",
        icon_name="help",
        order=311,
    )


@hooks.register("register_permissions")
def register_permissions() -> QuerySet[Permission]:
    # The core's own permission, so that groups get it in Wagtail's group editor.
    return Permission.objects.filter(
        content_type__app_label="nsfw_moderation", codename="review_moderatedimage"
    )


@hooks.register("construct_image_chooser_queryset")
def hide_withheld_images(images: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
    """``WAGTAIL_CHOOSER = "hide"``: editors who may not review never see withheld images."""
    if conf.WAGTAIL_CHOOSER != "hide" or may_review(request.user):
        return images
    return shown_only(images)
