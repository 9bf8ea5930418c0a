"""Template tags: ``nsfw_moderation`` (visibility filters) and ``nsfw_moderation_charts``."""
