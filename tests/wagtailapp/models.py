"""A Wagtail page that uses images four ways: chosen, in a StreamField, in rich text, inline."""

from __future__ import annotations

from django.db import models
from modelcluster.fields import ParentalKey
from wagtail import blocks
from wagtail.admin.panels import FieldPanel, InlinePanel
from wagtail.fields import RichTextField, StreamField
from wagtail.images.blocks import ImageChooserBlock
from wagtail.models import Orderable, Page


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
        InlinePanel("gallery_images", label="Gallery"),
    ]


class ArticleGalleryImage(Orderable):
    page = ParentalKey(ArticlePage, on_delete=models.CASCADE, related_name="gallery_images")
    image = models.ForeignKey("wagtailimages.Image", on_delete=models.CASCADE, related_name="+")

    panels = [FieldPanel("image")]
