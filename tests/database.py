"""The test database: SQLite by default, PostgreSQL when ``DATABASE_URL`` says so."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


def database_from_env(base_dir: Path) -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return _postgres(url)
    # Worker processes started by the tests are pointed at the test database
    # through NSFW_TEST_DB_NAME; SQLite test databases are files, not :memory:,
    # so that those processes can share them.
    name = os.environ.get("NSFW_TEST_DB_NAME", str(base_dir / ".db.sqlite3"))
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "TEST": {"NAME": str(base_dir / ".test-db.sqlite3")},
        # NSFW_TEST_SQLITE_OPTIONS=default: Django's own defaults (deferred
        # transactions, a 5 s timeout, no WAL), as a fresh startproject has them.
        "OPTIONS": {}
        if os.environ.get("NSFW_TEST_SQLITE_OPTIONS") == "default"
        else {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def moderation_database(base_dir: Path) -> dict[str, Any]:
    """A second SQLite database, for the tests that route ``nsfw_moderation`` to it."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "NSFW_TEST_MODERATION_DB_NAME", str(base_dir / ".moderation-db.sqlite3")
        ),
        "TEST": {"NAME": str(base_dir / ".test-moderation-db.sqlite3")},
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
    }


def _postgres(url: str) -> dict[str, Any]:
    parts = urlparse(url)
    name = (
        os.environ.get("NSFW_TEST_DB_NAME") or unquote(parts.path.lstrip("/")) or "nsfw_moderation"
    )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
        "TEST": {"NAME": f"test_{name}" if not os.environ.get("NSFW_TEST_DB_NAME") else name},
        # Persistent connections, for the test that ends a worker's connection.
        "CONN_MAX_AGE": None if os.environ.get("NSFW_TEST_PERSISTENT_CONNECTIONS") else 0,
    }
