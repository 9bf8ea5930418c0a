"""Start the demo: migrate, set up its users and sample photos, then run a worker and the site.

The users: ``admin`` (a superuser), ``moderator2`` (staff, may review: a second
moderator, to decide an appeal against the admin's decision) and ``uploader``
(a site user, not staff, who owns the sample photos and logs in at
``/accounts/login/``). Each gets a random password, kept in a file beside this
script that only its owner can read, and shown once, when it is set.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_FILE = Path(__file__).resolve().parent / ".admin-password"
ADMIN_USERNAME = "admin"
MODERATOR_USERNAME = "moderator2"
UPLOADER_USERNAME = "uploader"
REVIEW_PERMISSION = "review_moderatedimage"
STOP_GRACE = 10.0

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")


class Stop(Exception):
    """Raised by the signal handler to leave the main loop."""


def main() -> int:
    import django

    django.setup()
    warn_about_backend()
    passwords = set_up()
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    cluster = server = None
    try:
        cluster, server = start_children(os.environ.get("PORT", "8000"), passwords)
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
    port: str, passwords: Mapping[str, str | None] | None = None
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
    passwords = dict(passwords or {})
    print_login(port, passwords.pop(ADMIN_USERNAME, None), passwords)
    return cluster, server


def warn_about_backend() -> None:
    from django.conf import settings

    from demo_site.model_choice import fallback_warning

    choice = settings.NSFW_DEMO_CHOICE
    if choice.is_fallback:
        print(fallback_warning(choice), file=sys.stderr, flush=True)
    else:
        print(f"Classifier backend: {choice.backend} ({choice.reason}).", flush=True)


def set_up() -> dict[str, str | None]:
    """Migrate, make sure the users and samples exist; each user's password if it is new."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    admin, password = ensure_admin()
    passwords = {ADMIN_USERNAME: password}
    passwords[MODERATOR_USERNAME] = ensure_user(MODERATOR_USERNAME, _make_moderator)[1]
    uploader, passwords[UPLOADER_USERNAME] = ensure_user(UPLOADER_USERNAME, _make_uploader)
    add_samples(admin, uploader)
    return passwords


def password_file(username: str) -> Path:
    """Where ``username``'s password is kept: ``.admin-password``, ``.uploader-password``…"""
    return PASSWORD_FILE.with_name(f".{username}-password")


def ensure_admin() -> tuple[object, str | None]:
    """The ``admin`` superuser, and its password when it was set just now (else ``None``)."""
    return ensure_user(ADMIN_USERNAME, _make_admin)


def ensure_user(username: str, make: Callable[[str, str], object]) -> tuple[object, str | None]:
    """User ``username`` (made by ``make(username, password)``), and its password if new.

    The password is random, set on first run (or when its file is gone), and
    kept in a file only its owner can read; it is shown once, when it is set.
    """
    from django.contrib.auth import get_user_model

    users = get_user_model()._default_manager
    user = users.filter(username=username).first()
    where = password_file(username)
    if user is not None and where.exists():
        return user, None
    password = secrets.token_urlsafe(12)
    if user is None:
        user = make(username, password)
    else:  # the password file was lost: set a new one
        user.set_password(password)
        user.save(update_fields=["password"])
    where.touch(mode=0o600)
    where.chmod(0o600)
    where.write_text(password + "\n")
    return user, password


def _make_admin(username: str, password: str) -> object:
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.create_superuser(
        username, f"{username}@example.com", password
    )


def _make_moderator(username: str, password: str) -> object:
    """Staff with the review permission only: decides reviews and appeals, nothing else."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model()._default_manager.create_user(
        username, f"{username}@example.com", password, is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename=REVIEW_PERMISSION))
    return user


def _make_uploader(username: str, password: str) -> object:
    """A site user, not staff: owns the sample photos, reads and appeals its decisions."""
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.create_user(
        username, f"{username}@example.com", password
    )


def add_samples(user: object, uploader: object = None) -> None:
    """Generated sample photos (the uploader's) and ``user``'s avatar, saved through the models.

    Saved through the models, so that they get moderated; owned by
    ``uploader``, so that a decision against one can be appealed.
    """
    from demo_site import samples
    from demo_site.accounts.models import Profile
    from demo_site.gallery.models import Photo

    if not Photo.objects.exists():
        for title, image in samples.sample_files():
            Photo.objects.create(title=title, image=image, uploaded_by=uploader)
        print(f"Added {len(samples.SAMPLES)} sample photos; the worker will classify them.")
    profile, _ = Profile.objects.get_or_create(user=user)
    if not profile.avatar:
        profile.avatar = samples.avatar(ADMIN_USERNAME[0])
        profile.save()


def print_login(
    port: str, new_password: str | None, others: Mapping[str, str | None] | None = None
) -> None:
    """The addresses and the logins: each password only on the start that set it.

    ``new_password`` is the admin's; ``others`` maps the other demo users to theirs.
    """
    users = {ADMIN_USERNAME: new_password, **(others or {})}
    print(
        "\n".join(
            [
                "",
                "=" * 60,
                f"  Gallery:  http://127.0.0.1:{port}/   (log in: /accounts/login/)",
                f"  Admin:    http://127.0.0.1:{port}/admin/",
                *[_login_line(username, password) for username, password in users.items()],
                "  Press Ctrl-C to stop the site and the worker.",
                "=" * 60,
                "",
            ]
        ),
        flush=True,
    )


#: What each demo user is for, in the login banner.
ROLES = {
    ADMIN_USERNAME: "superuser",
    MODERATOR_USERNAME: "second moderator",
    UPLOADER_USERNAME: "owns the sample photos",
}


def _login_line(username: str, password: str | None) -> str:
    where = password_file(username)
    if password is not None:
        shown = f"{password}   (shown once; also in {where.name})"
    else:
        shown = f"in {where} (readable by you only)"
    return f"  Username: {username:<10}  Password: {shown}   [{ROLES.get(username, '')}]"


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
