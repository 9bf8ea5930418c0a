"""The worker side: what a django-q2 ``qcluster`` process (or ``QUEUE="sync"``) runs.

- :mod:`~nsfw_moderation.worker.tasks`: the django-q2 entry points.
- :mod:`~nsfw_moderation.worker.pipeline`: read → decode → match → classify a claimed batch.
- :mod:`~nsfw_moderation.worker.outcomes`: claim rows, store outcomes, retry, give up.
"""
