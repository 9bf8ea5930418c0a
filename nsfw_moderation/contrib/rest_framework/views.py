"""The owner's endpoints: the status of their objects, their statements of reasons, an appeal.

The same rules as the HTML pages, by the same functions (:mod:`nsfw_moderation.appeals`):
only the owner sees a statement or appeals (anyone else gets a 404), once
per statement, at most ``APPEALS_PER_HOUR`` an hour (a 429 beyond). Who
is signed in, and whether a POST needs a CSRF token, is the site's REST
framework settings' business (``SessionAuthentication`` checks the token).
Responses are never cached: each is one user's.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import models
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nsfw_moderation import appeals
from nsfw_moderation.contrib.rest_framework import serializers
from nsfw_moderation.contrib.rest_framework.schema import documented
from nsfw_moderation.contrib.rest_framework.status import own_object, status_of
from nsfw_moderation.models import Statement

NOT_YOURS = "Not found: no such object, or not the requesting user's."


class AppealNotPossible(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This decision can no longer be appealed.")
    default_code = "appeal_refused"


class OwnerView(APIView):
    """The signed-in user's own records, never cached."""

    permission_classes = [IsAuthenticated]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


class StatementPagination(PageNumberPagination):
    page_size = 50


class StatementList(OwnerView, generics.ListAPIView):
    """The requesting user's statements of reasons, newest first."""

    serializer_class = serializers.StatementSummarySerializer
    pagination_class = StatementPagination
    queryset = Statement.objects.none()  # for the schema: the real one is get_queryset()'s

    def get_queryset(self) -> models.QuerySet[Statement]:
        return appeals.statements_of(self.request.user).select_related(
            "content_type", "image", "appeal__outcome"
        )


class StatementDetail(OwnerView):
    @documented(
        summary="One of the requesting user's statements of reasons",
        responses={200: serializers.StatementSerializer, 404: NOT_YOURS},
    )
    def get(self, request: Request, public_id: UUID) -> Response:
        statement = appeals.own_statement(request.user, public_id)
        return Response(serializers.StatementSerializer(statement).data)


class AppealCreate(OwnerView):
    @documented(
        summary="Appeal against one of the requesting user's statements, once",
        request=serializers.AppealSerializer,
        responses={
            201: serializers.AppealSerializer,
            400: "The text is empty or too long.",
            404: NOT_YOURS,
            409: serializers.ErrorSerializer,
            429: serializers.ErrorSerializer,
        },
    )
    def post(self, request: Request, public_id: UUID) -> Response:
        statement = appeals.own_statement(request.user, public_id)
        given = serializers.AppealSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            appeal = appeals.file_appeal(statement, request.user, given.validated_data["text"])
        except appeals.TooManyAppeals as refused:
            raise exceptions.Throttled(detail=str(refused)) from None
        except appeals.AppealRefused as refused:
            raise AppealNotPossible(str(refused)) from None
        return Response(serializers.AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


class ObjectStatus(OwnerView):
    @documented(
        summary="Where the moderation of the requesting user's object stands",
        responses={200: serializers.ObjectStatusSerializer, 404: NOT_YOURS},
    )
    def get(self, request: Request, model: str, object_id: str) -> Response:
        obj = own_object(request.user, model, object_id)
        return Response(serializers.ObjectStatusSerializer(status_of(request.user, obj)).data)
