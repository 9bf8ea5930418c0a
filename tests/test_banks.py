"""Hash banks: PDQ matching of known images, allow/block/flag banks, retroactive matching."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from PIL import Image

from nsfw_moderation import banks, hashing, notices, review
from nsfw_moderation.models import (
    BankEntry,
    HashBank,
    ModeratedImage,
    ModerationEvent,
    Statement,
    Verdict,
)
from tests.images import encoded, picture
from tests.testapp.models import Photo

pytestmark = pytest.mark.skipif(not hashing.available(), reason="pdqhash is not installed")


def distance(a: Image.Image, b: Image.Image) -> int:
    return int(hashing.distances(*(hashing.to_words([hashing.pdq(i).hex]) for i in (a, b)))[0, 0])


def reencoded(image: Image.Image, quality: int = 35) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


# --- PDQ ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_copies_of_a_picture_match(seed):
    original = picture(seed)
    copies = {
        "re-encoded": reencoded(original),
        "resized": original.resize((200, 200)),
        "cropped": original.crop((3, 3, 509, 509)),  # PDQ tolerates a percent or two
        "all three": reencoded(original.crop((3, 3, 509, 509)).resize((300, 300)), 40),
    }
    found = {name: distance(original, copy) for name, copy in copies.items()}
    assert all(d <= hashing.DEFAULT_DISTANCE for d in found.values()), found


def test_unrelated_pictures_do_not_match():
    pictures = [picture(seed) for seed in range(10, 20)]
    nearest = min(distance(a, b) for i, a in enumerate(pictures) for b in pictures[i + 1 :])
    assert nearest > 2 * hashing.DEFAULT_DISTANCE


def test_flat_images_give_weak_hashes():
    assert hashing.pdq(Image.new("RGB", (100, 100), (200, 10, 10))).quality < hashing.MIN_QUALITY
    assert hashing.pdq(picture(1)).quality >= hashing.MIN_QUALITY


def test_hex_is_most_significant_bit_first():
    # PDQ bits as ThreatExchange prints them: bit 0 is the leftmost hex digit's top bit.
    words = hashing.to_words(["8" + "0" * 63])
    assert int(words[0, 0]) == 1 << 63


# --- The index --------------------------------------------------------------------------


def random_hashes(count: int, seed: int = 0) -> list[str]:
    import numpy as np

    raw = np.random.default_rng(seed).integers(0, 256, size=(count, 32), dtype=np.uint8)
    return [bytes(row).hex() for row in raw]


def flip(value: str, bits: int) -> str:
    number = int(value, 16)
    for bit in range(0, bits * 7, 7):
        number ^= 1 << bit
    return f"{number:064x}"


@pytest.mark.parametrize("size", [100, hashing.SCAN_BELOW + 1])
def test_index_finds_every_hash_within_the_distance_and_no_other(size):
    hexes = random_hashes(size)
    index = hashing.Index.of(hexes, list(range(size)))
    for bits in (0, 1, 17, 31):
        assert index.search(flip(hexes[7], bits), 31) == [(7, bits)]
    assert index.search(flip(hexes[7], 32), 31) == []
    # A scan agrees with the multi-index on a hash near none.
    query = random_hashes(1, seed=99)[0]
    assert index.search(query, 100) == hashing.Index.of(hexes, list(range(size))).search(query, 100)


# --- Banks in the worker -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_index() -> Iterator[None]:
    banks.forget_index()
    yield
    banks.forget_index()


def row_of(obj: Any) -> ModeratedImage:
    return ModeratedImage.objects.get(object_id=str(obj.pk), field_name="image")


def bank(action: str, *images: Image.Image, name: str = "") -> HashBank:
    created = HashBank.objects.create(name=name or f"{action} list", action=action)
    banks.add_entries(created, [(*hashing.pdq(image), "test") for image in images])
    return created


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
class TestUploads:
    def test_every_image_gets_its_pdq_hash(self):
        row = row_of(Photo.objects.create(image=encoded(picture(1))))
        assert hashing.is_pdq(row.pdq)
        assert row.pdq_quality >= hashing.MIN_QUALITY
        assert row.bank_entry is None

    def test_a_copy_of_a_block_bank_entry_is_blocked_and_explained(self):
        blocked = bank(HashBank.Action.BLOCK, picture(1), name="partner list")
        upload = reencoded(picture(1).resize((300, 300)), 50)
        row = row_of(Photo.objects.create(image=encoded(upload)))
        entry = BankEntry.objects.get(bank=blocked)
        assert row.verdict == Verdict.BLOCKED
        assert (row.bank_entry, row.bank_distance is not None) == (entry, True)
        kinds = list(row.events.order_by("pk").values_list("kind", flat=True))
        assert kinds == ["classified", "notified"]  # the block, then its statement of reasons
        note = row.events.get(kind="classified").note
        assert f'entry #{entry.pk} of hash bank "partner list"' in note
        # The statement of reasons gives a known image as the ground, not a score,
        # and never the bank's internal name.
        statement = Statement.objects.get(image=row)
        assert statement.threshold is None
        assert "known images" in notices.reasons(statement)
        assert "partner list" not in notices.reasons(statement)

    def test_the_owner_reads_a_banks_public_description_never_its_name(self):
        tips = bank(HashBank.Action.BLOCK, picture(1), name="Tips from police re: user 42")
        HashBank.objects.filter(pk=tips.pk).update(
            public_description="It was reported to us as illegal content."
        )
        row = row_of(Photo.objects.create(image=encoded(picture(1))))
        statement = Statement.objects.get(image=row)
        told = notices.reasons(statement)
        assert told.endswith("It was reported to us as illegal content.")
        assert "police" not in told

    def test_a_flag_bank_sends_an_allowed_image_to_review(self):
        bank(HashBank.Action.FLAG, picture(2))
        assert row_of(Photo.objects.create(image=encoded(picture(2)))).verdict == Verdict.FLAGGED

    def test_unrelated_images_are_not_matched(self):
        bank(HashBank.Action.BLOCK, picture(1))
        row = row_of(Photo.objects.create(image=encoded(picture(5))))
        assert (row.verdict, row.bank_entry) == (Verdict.ALLOWED, None)

    def test_allow_banks_override_block_banks(self):
        bank(HashBank.Action.BLOCK, picture(3))
        allowed = bank(HashBank.Action.ALLOW, picture(3))
        row = row_of(Photo.objects.create(image=encoded(picture(3))))
        assert row.verdict == Verdict.ALLOWED
        assert row.bank_entry.bank == allowed

    def test_weak_hashes_are_never_matched(self):
        flat = Image.new("RGB", (64, 64), (0, 90, 200))
        blocked = HashBank.objects.create(name="flat", action=HashBank.Action.BLOCK)
        assert banks.add_entries(blocked, [(*hashing.pdq(flat), "weak")]) == 1
        row = row_of(Photo.objects.create(image=encoded(flat)))
        assert row.pdq_quality < hashing.MIN_QUALITY
        assert (row.verdict, row.bank_entry) == (Verdict.ALLOWED, None)

    def test_a_removed_entry_no_longer_matches_and_stays_on_record(self, admin_user):
        blocked = bank(HashBank.Action.BLOCK, picture(4))
        assert banks.remove_entries(blocked.entries.all(), admin_user) == 1
        assert row_of(Photo.objects.create(image=encoded(picture(4)))).verdict == Verdict.ALLOWED
        entry = blocked.entries.get()
        assert (entry.removed_by, entry.removed_at is not None) == (admin_user, True)

    def test_the_index_is_refreshed_when_a_bank_changes_not_per_image(self):
        Photo.objects.create(image=encoded(picture(6)))
        first = banks.current_index()
        assert banks.current_index() is first
        bank(HashBank.Action.BLOCK, picture(6))
        assert banks.current_index() is not first

    def test_a_moderators_rejection_feeds_the_built_in_bank(self):
        rejected = row_of(Photo.objects.create(image=encoded(picture(7))))
        review.reject(rejected)
        entry = banks.builtin_bank().entries.get()
        assert (entry.pdq, entry.image) == (rejected.pdq, rejected)
        again = row_of(Photo.objects.create(image=encoded(picture(7), quality=60)))
        assert (again.verdict, again.similar_to) == (Verdict.BLOCKED, rejected)
        review.approve(rejected)
        assert banks.builtin_bank().entries.get().removed_at is not None


# --- Retroactive matching --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
class TestRetroactive:
    def test_a_new_block_entry_blocks_a_stored_look_alike_and_records_why(self):
        stored = row_of(Photo.objects.create(image=encoded(picture(8))))
        other = row_of(Photo.objects.create(image=encoded(picture(9))))
        assert stored.verdict == Verdict.ALLOWED
        blocked = bank(HashBank.Action.BLOCK, reencoded(picture(8).resize((256, 256))), name="NGO")
        stored.refresh_from_db()
        other.refresh_from_db()
        entry = blocked.entries.get()
        assert (stored.verdict, stored.bank_entry) == (Verdict.BLOCKED, entry)
        assert other.verdict == Verdict.ALLOWED
        event = stored.events.get(kind=ModerationEvent.Kind.MATCHED)
        assert (event.verdict_before, event.verdict_after) == (Verdict.ALLOWED, Verdict.BLOCKED)
        assert f'entry #{entry.pk} of hash bank "NGO"' in event.note

    def test_a_flag_entry_flags_stored_images_without_undoing_decisions(self):
        approved = row_of(Photo.objects.create(image=encoded(picture(10))))
        review.approve(approved)
        stored = row_of(Photo.objects.create(image=encoded(picture(11))))
        bank(HashBank.Action.FLAG, picture(10), picture(11))
        approved.refresh_from_db()
        stored.refresh_from_db()
        assert (approved.verdict, stored.verdict) == (Verdict.APPROVED, Verdict.FLAGGED)

    def test_allow_banks_protect_stored_images(self):
        bank(HashBank.Action.ALLOW, picture(12))
        stored = row_of(Photo.objects.create(image=encoded(picture(12))))
        bank(HashBank.Action.BLOCK, picture(12))
        stored.refresh_from_db()
        assert stored.verdict == Verdict.ALLOWED

    def test_a_rejection_blocks_stored_look_alikes(self):
        first = row_of(Photo.objects.create(image=encoded(picture(13))))
        copy = row_of(Photo.objects.create(image=encoded(picture(13).resize((300, 300)))))
        review.reject(first)
        copy.refresh_from_db()
        assert (copy.verdict, copy.similar_to) == (Verdict.BLOCKED, first)

    def test_matching_runs_as_a_worker_task(self, monkeypatch):
        sent = []
        monkeypatch.setattr(
            "nsfw_moderation.enqueue.dispatch", lambda task, *args: sent.append((task, args))
        )
        created = bank(HashBank.Action.BLOCK, picture(14))
        assert sent == [("nsfw_moderation.tasks.match_stored", (created.pk, 0))]


# --- Import and export -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["hex", "tsv"])
def test_import_and_export_round_trip(tmp_path, fmt):
    hexes = random_hashes(5)
    source = tmp_path / "list.txt"
    source.write_text("# a partner's list\n" + "\n".join(hexes) + "\n\n")
    call_command("nsfw_bank_import", "partner", str(source), action="block", verbosity=0)
    exported = tmp_path / f"out.{fmt}"
    call_command("nsfw_bank_export", "partner", str(exported), format=fmt, verbosity=0)
    call_command("nsfw_bank_import", "copy", str(exported), action="allow", verbosity=0)
    copy = HashBank.objects.get(name="copy")
    assert copy.action == HashBank.Action.ALLOW
    assert sorted(copy.entries.values_list("pdq", flat=True)) == sorted(hexes)


@pytest.mark.django_db(transaction=True)
def test_import_reads_threatexchange_tsv_and_skips_other_signal_types(tmp_path):
    pdq, md5 = random_hashes(1)[0], "d41d8cd98f00b204e9800998ecf8427e"
    source = tmp_path / "signals.tsv"
    source.write_text(
        f"signal_type\tsignal\tlabel\npdq\t{pdq.upper()}\tcase 17\nvideo_md5\t{md5}\tclip\n"
    )
    call_command("nsfw_bank_import", "ngo", str(source), action="flag", verbosity=0)
    entry = BankEntry.objects.get()
    assert (entry.pdq, entry.label, entry.bank.action) == (pdq, "case 17", HashBank.Action.FLAG)


# --- Admin ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_banks_and_entries_and_removes_an_entry_on_record(admin_client, admin_user):
    from django.urls import reverse

    partner = HashBank.objects.create(name="partner", action=HashBank.Action.BLOCK)
    banks.add_entries(partner, [(value, None, "case 1") for value in random_hashes(2)])
    assert "partner" in admin_client.get(reverse("admin:nsfw_moderation_hashbank_changelist")).text
    entries_url = reverse("admin:nsfw_moderation_bankentry_changelist")
    assert "case 1" in admin_client.get(entries_url).text
    first = partner.entries.order_by("pk").first()
    response = admin_client.post(
        entries_url, {"action": "remove_entries", "_selected_action": [first.pk]}
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.removed_by, first.removed_at is not None) == (admin_user, True)
    assert partner.entries.filter(removed_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_entries_cannot_be_deleted_and_viewers_cannot_remove_them(client, django_user_model):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_bankentry"))
    client.force_login(viewer)
    partner = HashBank.objects.create(name="partner", action=HashBank.Action.BLOCK)
    banks.add_entries(partner, [(random_hashes(1)[0], None, "")])
    entry = partner.entries.get()
    url = reverse("admin:nsfw_moderation_bankentry_changelist")
    client.post(url, {"action": "remove_entries", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert entry.removed_at is None
    delete = reverse("admin:nsfw_moderation_bankentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert BankEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db
def test_import_never_changes_a_banks_action(tmp_path):
    from django.core.management.base import CommandError

    HashBank.objects.create(name="safe", action=HashBank.Action.ALLOW)
    source = tmp_path / "list.txt"
    source.write_text(random_hashes(1)[0] + "\n")
    with pytest.raises(CommandError, match="allows"):
        call_command("nsfw_bank_import", "safe", str(source), action="block", verbosity=0)
    with pytest.raises(CommandError, match="give --action"):
        call_command("nsfw_bank_import", "new", str(source), verbosity=0)
    assert not BankEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_a_known_picture_in_a_later_frame_of_an_animation_is_matched():
    from django.core.files.base import ContentFile

    frames = [picture(20), picture(21), picture(22)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    bank(HashBank.Action.BLOCK, picture(22))
    row = row_of(Photo.objects.create(image=ContentFile(buffer.getvalue(), name="a.gif")))
    assert (row.verdict, row.bank_entry.bank.name) == (Verdict.BLOCKED, "block list")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("colour_backend")
def test_a_rows_admin_page_shows_the_bank_entry_and_distance(admin_client):
    from django.urls import reverse

    bank(HashBank.Action.FLAG, picture(23), name="NGO list")
    row = row_of(Photo.objects.create(image=encoded(picture(23).resize((300, 300)))))
    page = admin_client.get(reverse("admin:nsfw_moderation_moderatedimage_change", args=[row.pk]))
    assert f"NGO list #{row.bank_entry_id}" in page.text
    assert f'<div class="readonly">{row.bank_distance}</div>' in page.text


@pytest.mark.django_db(transaction=True)
def test_an_admin_import_adds_hashes_and_leaves_matching_to_a_worker(admin_client, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    sent = []
    monkeypatch.setattr("nsfw_moderation.enqueue.dispatch", lambda *args: sent.append(args))
    hexes = random_hashes(3)
    upload = SimpleUploadedFile("list.txt", "\n".join(hexes).encode())
    data = {"name": "partner", "action": "block", "description": "", "hash_list": upload}
    response = admin_client.post(reverse("admin:nsfw_moderation_hashbank_add"), data)
    assert response.status_code == 302
    partner = HashBank.objects.get(name="partner")
    assert sorted(partner.entries.values_list("pdq", flat=True)) == sorted(hexes)
    assert sent == [(banks.MATCH_TASK, partner.pk, 0)]


@pytest.mark.django_db
def test_an_admin_import_refuses_a_file_without_hashes(admin_client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    upload = SimpleUploadedFile("list.txt", b"hello\nworld\n")
    data = {"name": "partner", "action": "block", "description": "", "hash_list": upload}
    response = admin_client.post(reverse("admin:nsfw_moderation_hashbank_add"), data)
    assert response.status_code == 200
    assert not HashBank.objects.exists()
