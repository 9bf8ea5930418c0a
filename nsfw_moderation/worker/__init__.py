"""The worker side: what a worker process of any queue (or ``QUEUE="sync"``) runs.

- :mod:`~nsfw_moderation.worker.tasks`: the entry points every queue runs.
- :mod:`~nsfw_moderation.worker.pipeline`: read → decode → match → classify a claimed batch.
- :mod:`~nsfw_moderation.worker.outcomes`: claim rows, store outcomes, retry, give up.
"""
