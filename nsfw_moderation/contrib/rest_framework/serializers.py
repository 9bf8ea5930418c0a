"""What the owner's endpoints show: explicit lists of fields, so no internal note can slip in.

A statement shows what its HTML page shows (:mod:`nsfw_moderation.appeals`):
the decision, its reasons as the owner may read them, the appeal and the
outcome's note to the owner; never the moderators' internal notes, nor who decided.
"""

from __future__ import annotations

from rest_framework import serializers

from nsfw_moderation import appeals, notices
from nsfw_moderation.contrib.rest_framework.status import STATES
from nsfw_moderation.models import Statement, Verdict


class OutcomeSerializer(serializers.Serializer):
    upheld = serializers.BooleanField(read_only=True)
    user_note = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class AppealSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=appeals.APPEAL_MAX_LENGTH)
    created_at = serializers.DateTimeField(read_only=True)
    outcome = OutcomeSerializer(read_only=True, allow_null=True)


class StatementSummarySerializer(serializers.Serializer):
    public_id = serializers.UUIDField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    model = serializers.SerializerMethodField()
    object_id = serializers.CharField(read_only=True)
    field_name = serializers.CharField(read_only=True)
    verdict = serializers.ChoiceField(choices=Verdict.choices, read_only=True)
    verdict_display = serializers.CharField(source="get_verdict_display", read_only=True)
    automated = serializers.BooleanField(read_only=True)
    #: Where the decision stands now (after an appeal, a later decision, a new
    #: file), in the words of the owner's HTML pages: :func:`notices.owner_state`.
    state = serializers.SerializerMethodField()
    state_display = serializers.SerializerMethodField()

    def get_state(self, statement: Statement) -> str:
        return notices.owner_state(statement).code

    def get_state_display(self, statement: Statement) -> str:
        return notices.owner_state(statement).label

    def get_model(self, statement: Statement) -> str | None:
        content_type = statement.content_type
        return None if content_type is None else f"{content_type.app_label}.{content_type.model}"


class StatementSerializer(StatementSummarySerializer):
    reasons = serializers.SerializerMethodField()
    appealable = serializers.SerializerMethodField()
    appeal = AppealSerializer(read_only=True, allow_null=True)

    def get_reasons(self, statement: Statement) -> str:
        return notices.reasons(statement)

    def get_appealable(self, statement: Statement) -> bool:
        return appeals.appealable(statement)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(read_only=True)


class FieldStatusSerializer(serializers.Serializer):
    field = serializers.CharField(read_only=True)
    state = serializers.ChoiceField(choices=list(STATES), read_only=True)
    state_display = serializers.CharField(read_only=True)
    visible = serializers.BooleanField(read_only=True)
    verdict = serializers.ChoiceField(choices=Verdict.choices, read_only=True, allow_null=True)
    verdict_display = serializers.CharField(read_only=True, allow_null=True)
    statement = serializers.UUIDField(read_only=True, allow_null=True)


class ObjectStatusSerializer(serializers.Serializer):
    model = serializers.CharField(read_only=True)
    pk = serializers.CharField(read_only=True)
    files = FieldStatusSerializer(many=True, read_only=True)
