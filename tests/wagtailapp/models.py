"""A Wagtail page that uses images three ways: a chosen image, a StreamField, rich text."""

from __future__ import annotations

from django.db import models
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField, StreamField
from wagtail.images.blocks import ImageChooserBlock
from wagtail.models import Page


class ArticlePage(Page):
    cover = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = StreamField(
        [
            ("image", ImageChooserBlock()),
            ("gallery", blocks.ListBlock(ImageChooserBlock())),
            ("text", blocks.CharBlock()),
        ],
        blank=True,
    )
    intro = RichTextField(blank=True)

    content_panels = [
        *Page.content_panels,
        FieldPanel("cover"),
        FieldPanel("body"),
        FieldPanel("intro"),
    ]
