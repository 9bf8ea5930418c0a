from __future__ import annotations

from django.urls import path

from demo_site.gallery import views

app_name = "gallery"
urlpatterns = [
    path("", views.index, name="index"),
    path("photos/<int:pk>/image", views.photo_image, name="photo_image"),
]
