"""Template tags of the Wagtail integration: ``{% load nsfw_moderation_wagtail %}``."""
