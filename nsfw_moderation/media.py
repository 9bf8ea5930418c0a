"""Serving uploads only while moderation lets them be seen.

A rejected image that stays in storage at its usual URL is still hosted by the
site. Serve moderated media through :func:`serve_visible` (or wrap your own
media view in :func:`visible_media_only`) instead of letting the web server
hand out ``MEDIA_ROOT`` directly::

    # urls.py
    from nsfw_moderation.media import serve_visible

    urlpatterns += [path("media/<path:path>", serve_visible)]

A file is served when it is held by a moderated field (``MODELS`` or
``register()``) and every object holding it is visible by the rule of
:func:`nsfw_moderation.query.visible`; anything else is a 404, including files
no moderated field holds. In production, let the web server send the bytes:
``serve_visible(..., accel_redirect="/protected-media/")`` answers with an
``X-Accel-Redirect`` header for an nginx ``internal`` location, and
``sendfile=True`` with ``X-Sendfile`` (Apache mod_xsendfile, lighttpd).
"""

from __future__ import annotations

import functools
import mimetypes
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from nsfw_moderation import query, registry

#: Headers on every response: no cache keeps bytes whose verdict may change, no
#: sniffing, and nothing in the file may run as a document.
HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def visible_file(name: str) -> FieldFile | None:
    """The stored file ``name`` if moderation lets it be shown, else ``None``.

    ``name`` is the name a file field stores (``photos/2024/05/cat.jpg``). A
    query or two per moderated field: one finds the objects holding the file,
    one more (only where some do) looks for any that is hidden.
    """
    name = _clean(name)
    found: FieldFile | None = None
    for model, field_name in registry.registered():
        holders = model._base_manager.filter(**{field_name: name})
        holder = holders.first()
        if holder is None:
            continue
        if query.hidden(holders, field_name).exists():
            return None
        found = found or getattr(holder, field_name)
    return found


def _clean(name: str) -> str:
    # Stored names are relative and normalised; anything else cannot match one,
    # and is refused before it reaches a query or a storage. Nor can a name
    # with a NUL, which PostgreSQL refuses to compare with at all.
    normal = posixpath.normpath(name) if name else ""
    outside = name.startswith("/") or normal.startswith("..")
    if not name or normal != name or outside or "\x00" in name:
        raise Http404("No such file.")
    return name


@require_safe
def serve_visible(
    request: HttpRequest,
    path: str,
    *,
    accel_redirect: str | None = None,
    sendfile: bool = False,
) -> HttpResponse | FileResponse:
    """The file at ``path`` if it may be shown; a 404 otherwise.

    ``accel_redirect``: the URL prefix of an nginx ``internal`` location that
    serves the storage's files; ``sendfile``: answer with ``X-Sendfile`` and
    the file's path (storages with ``path()`` only). Without either, the bytes
    are streamed from the field's storage.
    """
    file = visible_file(path)
    if file is None:
        raise Http404("No such file.")
    name = str(file.name)
    response: HttpResponse | FileResponse
    if accel_redirect is not None:
        response = HttpResponse(content_type=_content_type(name))
        response["X-Accel-Redirect"] = accel_redirect.rstrip("/") + "/" + quote(name)
    elif sendfile:
        response = HttpResponse(content_type=_content_type(name))
        response["X-Sendfile"] = file.storage.path(name)
    else:
        response = FileResponse(file.storage.open(name, "rb"))
        response["Content-Type"] = _content_type(name)
    for header, value in HEADERS.items():
        response[header] = value
    return response


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def visible_media_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a view that serves a file by its ``path`` argument: 404 unless it may be shown.

    For example Django's development server view::

        path("media/<path:path>", visible_media_only(serve), {"document_root": MEDIA_ROOT})
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, path: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if visible_file(path) is None:
            raise Http404("No such file.")
        response = view(request, path, *args, **kwargs)
        for header, value in HEADERS.items():
            response[header] = value
        return response

    return wrapper
