"""A small runnable Django site that shows nsfw_moderation at work."""
