"""Management commands: nsfw_scan, nsfw_classify, nsfw_evaluate, nsfw_model, nsfw_requeue."""
