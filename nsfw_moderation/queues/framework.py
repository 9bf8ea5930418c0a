"""Django's Tasks framework, where it is: ``django.tasks`` (Django ≥ 6.0) or the backport."""

from __future__ import annotations

try:  # Django 6.0 and later
    from django.tasks import task, task_backends  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import task, task_backends  # type: ignore[no-redef,assignment,unused-ignore]

__all__ = ["task", "task_backends"]
