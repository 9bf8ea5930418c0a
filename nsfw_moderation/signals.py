"""Public signals. Every one is sent with ``sender=ModeratedImage``.

Receivers get ``instance`` (the :class:`~nsfw_moderation.models.ModeratedImage`
row) as a keyword argument; ``image_reviewed`` also gets ``user``,
``previous_verdict`` and ``note``. ``decision_notice`` gets ``statement`` (a
:class:`~nsfw_moderation.models.Statement`), ``owner`` (a user or ``None``)
and ``outcome`` (an :class:`~nsfw_moderation.models.AppealOutcome`, or ``None``
for the first notice); ``appeal_decided`` gets ``appeal`` and ``outcome``.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A classification finished and its verdict was stored (any verdict).
moderation_completed = Signal()

#: A classification scored at or above ``FLAG_THRESHOLD``: a human should look.
image_flagged = Signal()

#: A classification scored at or above ``BLOCK_THRESHOLD``: blocked without review.
image_blocked = Signal()

#: A moderator approved or rejected an image.
image_reviewed = Signal()

#: A statement of reasons was written (or an appeal against one decided): tell the owner.
decision_notice = Signal()

#: A moderator decided an appeal; the restriction was lifted if ``outcome.upheld``.
appeal_decided = Signal()
