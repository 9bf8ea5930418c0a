"""tests/urls.py and a host's REST API (tests/api.py) at ``/api/``: for the DRF tests.

The rest of the suite runs without the API's endpoints, as most sites would:
its check (W001, no ``OWNER``) is for sites that mount them.
"""

from __future__ import annotations

from django.urls import include, path

from tests.urls import urlpatterns as site

urlpatterns = [*site, path("api/", include("tests.api"))]
