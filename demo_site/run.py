"""Start the demo: migrate, set up an admin and sample photos, then run a worker and the site.

Run from the repository root: ``python demo_site/run.py`` (``make demo``).
Ctrl-C (or SIGTERM) stops both the web server and the django-q2 cluster.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_FILE = Path(__file__).resolve().parent / ".admin-password"
ADMIN_USERNAME = "admin"
STOP_GRACE = 10.0

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")


class Stop(Exception):
    """Raised by the signal handler to leave the main loop."""


def main() -> int:
    import django

    django.setup()
    warn_about_backend()
    new_password = set_up()
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = server = None
    try:
        cluster, server = start_children(os.environ.get("PORT", "8000"), new_password)
        return wait_for(cluster, server)
    except Stop:
        print("\nStopping the demo…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            stop_server(server)
        if cluster is not None:
            stop_cluster(cluster)


def start_children(
    port: str, new_password: str | None = None
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Start the django-q2 cluster and the development server.

    Each gets its own session, so a Ctrl-C in the terminal reaches only this
    script, which then stops them in the order and manner they need.
    """
    manage = [sys.executable, str(ROOT / "manage.py")]
    cluster = subprocess.Popen([*manage, "qcluster"], cwd=ROOT, start_new_session=True)
    try:
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            start_new_session=True,
        )
    except BaseException:
        stop_cluster(cluster)
        raise
    print_login(port, new_password)
    return cluster, server


def warn_about_backend() -> None:
    from django.conf import settings

    from demo_site.model_choice import fallback_warning

    choice = settings.NSFW_DEMO_CHOICE
    if choice.is_fallback:
        print(fallback_warning(choice), file=sys.stderr, flush=True)
    else:
        print(f"Classifier backend: {choice.backend} ({choice.reason}).", flush=True)


def set_up() -> str | None:
    """Migrate, make sure the admin and samples exist; the admin's password if it is new."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    user, password = ensure_admin()
    add_samples(user)
    return password


def ensure_admin() -> tuple[object, str | None]:
    """The ``admin`` superuser, and its password when it was set just now (else ``None``).

    The password is random, set on first run (or when its file is gone), and
    kept in a file only its owner can read; it is shown once, when it is set.
    """
    from django.contrib.auth import get_user_model

    users = get_user_model()._default_manager
    user = users.filter(username=ADMIN_USERNAME).first()
    if user is not None and PASSWORD_FILE.exists():
        return user, None
    password = secrets.token_urlsafe(12)
    if user is None:
        user = users.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
    else:  # the password file was lost: set a new one
        user.set_password(password)
        user.save(update_fields=["password"])
    PASSWORD_FILE.touch(mode=0o600)
    PASSWORD_FILE.chmod(0o600)
    PASSWORD_FILE.write_text(password + "\n")
    return user, password


def add_samples(user: object) -> None:
    """Generated sample photos (and an avatar), saved through the models so they get moderated."""
    from demo_site import samples
    from demo_site.accounts.models import Profile
    from demo_site.gallery.models import Photo

    if not Photo.objects.exists():
        for title, image in samples.sample_files():
            Photo.objects.create(title=title, image=image)
        print(f"Added {len(samples.SAMPLES)} sample photos; the worker will classify them.")
    profile, _ = Profile.objects.get_or_create(user=user)
    if not profile.avatar:
        profile.avatar = samples.avatar(ADMIN_USERNAME[0])
        profile.save()


def print_login(port: str, new_password: str | None) -> None:
    """The addresses, and the admin's password only on the start that created it."""
    if new_password is not None:
        password = f"{new_password}   (shown once; also in {PASSWORD_FILE.name})"
    else:
        password = f"in {PASSWORD_FILE} (readable by you only)"
    print(
        "\n".join(
            [
                "",
                "=" * 60,
                f"  Gallery:  http://127.0.0.1:{port}/",
                f"  Admin:    http://127.0.0.1:{port}/admin/",
                f"  Username: {ADMIN_USERNAME}",
                f"  Password: {password}",
                "  Press Ctrl-C to stop the site and the worker.",
                "=" * 60,
                "",
            ]
        ),
        flush=True,
    )


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def wait_for(cluster: subprocess.Popen[bytes], server: subprocess.Popen[bytes]) -> int:
    """Return (1) as soon as either child exits on its own."""
    while cluster.poll() is None and server.poll() is None:
        time.sleep(0.5)
    which = "worker cluster" if cluster.poll() is not None else "web server"
    print(f"The {which} exited; stopping the demo.", file=sys.stderr, flush=True)
    return 1


def stop_server(server: subprocess.Popen[bytes]) -> None:
    _signal_group(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(server.pid, signal.SIGKILL)
        server.wait()


def stop_cluster(cluster: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the cluster's main process only, then SIGKILL to its leftovers.

    Signalling the whole group at once makes django-q2's workers and its
    guard race each other and can leave the cluster hanging; the main
    process shuts its own children down.
    """
    if cluster.poll() is None:
        cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        print("The worker did not stop in time; killing it.", file=sys.stderr)
    _signal_group(cluster.pid, signal.SIGKILL)  # whatever is left in its group
    cluster.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


if __name__ == "__main__":
    sys.exit(main())
