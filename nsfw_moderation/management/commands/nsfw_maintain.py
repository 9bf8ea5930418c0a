"""``manage.py nsfw_maintain``: the periodic maintenance job, once, for cron or a systemd timer.

The same job django-q2 runs from its ``Schedule`` and Celery from
``maintenance_schedule()``: for a site on Django's Tasks framework (which has
no scheduler) or any queue without one, run it every few minutes, e.g.::

    */5 * * * *  cd /srv/site && .venv/bin/python manage.py nsfw_maintain
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the moderation maintenance job once: re-queue rows a worker dropped or whose "
        "task the broker lost, queue files that have no row, fold the counts, deliver "
        "waiting notices. Run it every few minutes (cron, a systemd timer) on a queue "
        "without a schedule of its own."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        from nsfw_moderation.worker.tasks import maintain

        results = maintain()
        if options["verbosity"] >= 1:
            self.stdout.write(" ".join(f"{name}={value}" for name, value in results.items()))
