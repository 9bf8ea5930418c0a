"""System checks for ``NSFW_MODERATION``. Ids are stable: ``nsfw_moderation.E001`` …

None of them imports torch or loads a model: checks also run in the
``qcluster`` parent process, which must stay free of the model.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import models, router
from django.utils.module_loading import import_string

from nsfw_moderation import model_cache
from nsfw_moderation.backends import ALIASES, constructor_arguments
from nsfw_moderation.conf import (
    AUDITED_VERDICTS,
    DEFAULTS,
    DEVICES,
    ON_ERROR_CHOICES,
    PRECISIONS,
    QUEUES,
    SHADOW_KEYS,
    conf,
)
from nsfw_moderation.hub import LOCAL_PREFIX, hub_repository

PREFIX = "NSFW_MODERATION"


@register(Tags.compatibility)
def check_settings_shape(**kwargs: Any) -> list[CheckMessage]:
    user = getattr(settings, "NSFW_MODERATION", {})
    if not isinstance(user, Mapping):
        return [Error(f"{PREFIX} must be a dict.", id="nsfw_moderation.E014")]
    unknown = sorted(set(user) - set(DEFAULTS))
    return [
        Warning(
            f"{PREFIX} has an unknown key {key!r}.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="nsfw_moderation.W002",
        )
        for key in unknown
    ]


@register(Tags.models)
def check_models(**kwargs: Any) -> list[CheckMessage]:
    if not isinstance(conf.MODELS, Mapping):
        return [
            Error(
                f"{PREFIX}['MODELS'] must be a dict of 'app_label.ModelName' to field names.",
                hint='For example {"gallery.Photo": ["image"]}.',
                id="nsfw_moderation.E018",
            )
        ]
    errors: list[CheckMessage] = []
    for label, fields in conf.MODELS.items():
        errors.extend(_check_model_entry(label, fields))
    return errors


def _check_model_entry(label: str, fields: Any) -> list[CheckMessage]:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return [
            Error(
                f"{PREFIX}['MODELS'] names {label!r}, which is not an installed model.",
                hint="Use 'app_label.ModelName', and check that the app is in INSTALLED_APPS.",
                id="nsfw_moderation.E001",
            )
        ]
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)) or not fields:
        return [
            Error(
                f"{PREFIX}['MODELS'][{label!r}] must be a non-empty list of field names.",
                hint=f'For example ["{label.split(".")[-1].lower()}_image"].',
                id="nsfw_moderation.E019",
            )
        ]
    return [error for name in fields for error in _check_field(model, label, name)]


def _check_field(model: type[models.Model], label: str, name: str) -> list[CheckMessage]:
    file_fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
    hint = f"File fields of {label}: {', '.join(file_fields) or 'none'}."
    try:
        field = model._meta.get_field(name)
    except Exception:
        return [Error(f"{label} has no field {name!r}.", hint=hint, id="nsfw_moderation.E002")]
    if not isinstance(field, models.FileField):
        return [
            Error(
                f"{label}.{name} is a {type(field).__name__}, not a FileField or ImageField.",
                hint=hint,
                id="nsfw_moderation.E003",
            )
        ]
    return []


@register(Tags.compatibility)
def check_thresholds(**kwargs: Any) -> list[CheckMessage]:
    flag, block = conf.FLAG_THRESHOLD, conf.BLOCK_THRESHOLD
    errors: list[CheckMessage] = []
    if not _is_probability(flag):
        errors.append(_threshold_error("FLAG_THRESHOLD", flag, "nsfw_moderation.E004"))
    if block is not None and not _is_probability(block):
        errors.append(_threshold_error("BLOCK_THRESHOLD", block, "nsfw_moderation.E005"))
    elif block is not None and _is_probability(flag) and block < flag:
        errors.append(
            Warning(
                f"BLOCK_THRESHOLD ({block}) is below FLAG_THRESHOLD ({flag}): "
                "no image will ever be flagged for review.",
                hint="Set BLOCK_THRESHOLD at or above FLAG_THRESHOLD, or to None.",
                id="nsfw_moderation.W001",
            )
        )
    return errors


def _is_probability(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0 <= float(value) <= 1


def _threshold_error(name: str, value: Any, check_id: str) -> Error:
    return Error(
        f"{PREFIX}['{name}'] is {value!r}; it must be a number between 0 and 1.",
        hint="Scores are probabilities: 0.5 flags images the model thinks more likely unsafe.",
        id=check_id,
    )


@register(Tags.compatibility)
def check_queue(**kwargs: Any) -> list[CheckMessage]:
    if conf.QUEUE not in QUEUES:
        return [_choice_error("QUEUE", conf.QUEUE, QUEUES, "nsfw_moderation.E006")]
    if conf.QUEUE == "django_q" and not apps.is_installed("django_q"):
        return [
            Error(
                "QUEUE is 'django_q' but django_q is not in INSTALLED_APPS.",
                hint="Add 'django_q' to INSTALLED_APPS (pip install django-q2), "
                "or set QUEUE to 'sync' for development.",
                id="nsfw_moderation.E007",
            )
        ]
    return []


@register(Tags.compatibility)
def check_choices(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, choices, check_id in (
        ("PRECISION", PRECISIONS, "nsfw_moderation.E008"),
        ("DEVICE", DEVICES, "nsfw_moderation.E009"),
        ("ON_ERROR", ON_ERROR_CHOICES, "nsfw_moderation.E010"),
    ):
        value = getattr(conf, name)
        if name == "DEVICE" and isinstance(value, str) and value.startswith("cuda:"):
            continue
        if value not in choices:
            errors.append(_choice_error(name, value, choices, check_id))
    return errors


def _choice_error(name: str, value: Any, choices: tuple[str, ...], check_id: str) -> Error:
    return Error(
        f"{PREFIX}['{name}'] is {value!r}.",
        hint=f"Choose one of: {', '.join(choices)}.",
        id=check_id,
    )


@register(Tags.compatibility)
def check_positive_numbers(**kwargs: Any) -> list[CheckMessage]:
    names = (
        "BATCH_SIZE",
        "MAX_ATTEMPTS",
        "MAX_IMAGE_PIXELS",
        "MAX_FILE_SIZE",
        "MAX_FRAMES",
        "VIDEO_MAX_FRAMES",
        "VIDEO_MAX_PIXELS",
        "VIDEO_MAX_STREAMS",
        "VIDEO_MAX_FILE_SIZE",
        "RECONCILE_BATCH",
        "APPEALS_PER_HOUR",
        "CALIBRATION_IMAGES",
    )
    errors: list[CheckMessage] = [
        Error(
            f"{PREFIX}['{name}'] is {getattr(conf, name)!r}; it must be a positive integer.",
            id="nsfw_moderation.E011",
        )
        for name in names
        if not _is_positive_int(getattr(conf, name))
    ]
    return errors + [
        Error(
            f"{PREFIX}['{name}'] is {getattr(conf, name)!r}; it must be a positive number "
            "of seconds.",
            id="nsfw_moderation.E020",
        )
        for name in (
            "RETRY_DELAY",
            "RETRY_MAX_DELAY",
            "STALE_AFTER",
            "VIDEO_FRAME_INTERVAL",
            "VIDEO_MAX_DURATION",
            "VIDEO_DECODE_TIMEOUT",
        )
        if not _is_positive_number(getattr(conf, name))
    ]


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register(Tags.compatibility)
def check_unsafe_labels(**kwargs: Any) -> list[CheckMessage]:
    labels = conf.UNSAFE_LABELS
    if isinstance(labels, (list, tuple)) and labels and all(isinstance(x, str) for x in labels):
        return []
    return [
        Error(
            f"{PREFIX}['UNSAFE_LABELS'] is {labels!r}; it must be a non-empty list of labels.",
            hint='The default model\'s labels are "normal" and "nsfw": ["nsfw"].',
            id="nsfw_moderation.E012",
        )
    ]


@register(Tags.compatibility)
def check_backend(**kwargs: Any) -> list[CheckMessage]:
    # Importing the backend's module is cheap: torch is only imported when a
    # backend is instantiated, in a worker.
    path = ALIASES.get(conf.BACKEND, conf.BACKEND)
    try:
        import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"{PREFIX}['BACKEND'] {conf.BACKEND!r} cannot be imported: {exc}.",
                hint=f"Use {' or '.join(repr(a) for a in ALIASES)}, or a dotted path to a class.",
                id="nsfw_moderation.E013",
            )
        ]
    return []


@register(Tags.compatibility)
def check_model_revision(**kwargs: Any) -> list[CheckMessage]:
    revision = conf.MODEL_REVISION
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        return [
            Error(
                f"{PREFIX}['MODEL_REVISION'] is {revision!r}; it must be None or a branch, "
                "tag or commit of MODEL on the Hugging Face Hub.",
                hint="Pin a commit hash: `manage.py nsfw_model download` prints the one it "
                "fetched.",
                id="nsfw_moderation.E022",
            )
        ]
    return []


# Pinning the model is a deployment concern: a fresh project stays quiet, and
# `check --deploy` (which a release pipeline runs) says what to pin.
@register(Tags.compatibility, deploy=True)
def check_model_pinned(**kwargs: Any) -> list[CheckMessage]:
    """W004: a model loaded from the Hub without MODEL_REVISION."""
    if conf.MODEL_REVISION is None and _loads_from_the_hub(conf.BACKEND, conf.MODEL):
        return [
            Warning(
                f"MODEL {conf.MODEL!r} is loaded from the Hugging Face Hub without "
                "MODEL_REVISION: workers take whatever its main branch holds when they start.",
                hint="Run `manage.py nsfw_model download`, which prints the commit it fetched, "
                "and set MODEL_REVISION to that commit.",
                id="nsfw_moderation.W004",
            )
        ]
    return []


@register(Tags.compatibility, deploy=True)
def check_shadow_model_revision(**kwargs: Any) -> list[CheckMessage]:
    """W009: W004 for the shadow model, which takes no ``MODEL_REVISION`` from the live one."""
    shadow = conf.SHADOW_MODEL
    if not isinstance(shadow, Mapping) or not isinstance(shadow.get("MODEL"), str):
        return []  # E029 says what is wrong
    backend = str(shadow.get("BACKEND", conf.BACKEND))
    if shadow.get("MODEL_REVISION") is not None or not _loads_from_the_hub(
        backend, shadow["MODEL"]
    ):
        return []
    return [
        Warning(
            f"SHADOW_MODEL's MODEL {shadow['MODEL']!r} is loaded from the Hugging Face Hub "
            "without a MODEL_REVISION: workers take whatever its main branch holds when they "
            "start, so its scores may come from another model than the one you compare.",
            hint="Run `manage.py nsfw_model download`, which prints the commit it fetched for "
            "the shadow model too, and set SHADOW_MODEL['MODEL_REVISION'] to that commit.",
            id="nsfw_moderation.W009",
        )
    ]


def _loads_from_the_hub(backend: str, model: str) -> bool:
    path = ALIASES.get(backend, backend)
    if path == ALIASES["timm"]:
        return hub_repository(model) is not None
    return path == ALIASES["transformers"] and not Path(model).is_dir()


@register(Tags.compatibility)
def check_timm_model(**kwargs: Any) -> list[CheckMessage]:
    """E030, W008: the timm backend loads "hf-hub:org/name" or a local folder, nothing else."""
    if ALIASES.get(conf.BACKEND, conf.BACKEND) != ALIASES["timm"]:
        return []
    repository = hub_repository(conf.MODEL)
    if repository is None:
        local = Path(conf.MODEL.removeprefix(LOCAL_PREFIX)).is_dir()
        return [] if local else [_timm_model_warning()]
    if repository and "@" not in repository:
        return []
    return [
        Error(
            f"{PREFIX}['MODEL'] is {conf.MODEL!r}: the timm backend needs 'hf-hub:org/name', "
            "with the revision in MODEL_REVISION.",
            hint='For example "hf-hub:Marqo/nsfw-image-detection-384", and MODEL_REVISION '
            "set to the commit `manage.py nsfw_model download` prints.",
            id="nsfw_moderation.E030",
        )
    ]


def _timm_model_warning() -> Warning:
    return Warning(
        f"BACKEND 'timm' cannot load MODEL {conf.MODEL!r} on this machine: it is neither "
        "'hf-hub:org/name' nor a folder here.",
        hint='Name a Hub model as "hf-hub:org/name" (e.g. "hf-hub:Marqo/nsfw-image-detection-'
        '384"), or give a folder with config.json and model.safetensors. Models of the '
        'transformers library (e.g. "AdamCodd/vit-base-nsfw-detector") run with BACKEND '
        '"transformers".',
        id="nsfw_moderation.W008",
    )


@register(Tags.compatibility)
def check_blocklist(**kwargs: Any) -> list[CheckMessage]:
    # E015 and E016 checked the pHash distance and imagehash; their ids stay retired.
    if conf.BLOCKLIST_DISTANCE is None:
        return []
    return [
        Warning(
            f"{PREFIX}['BLOCKLIST_DISTANCE'] is deprecated and ignored: look-alikes are now "
            "matched by their PDQ hash, always, within PDQ_DISTANCE (31 by default).",
            hint="Remove BLOCKLIST_DISTANCE; set PDQ_DISTANCE only to depart from 31.",
            id="nsfw_moderation.W005",
        )
    ]


@register(Tags.compatibility)
def check_pdq(**kwargs: Any) -> list[CheckMessage]:
    distance = conf.PDQ_DISTANCE
    if not isinstance(distance, int) or isinstance(distance, bool) or not 0 <= distance <= 255:
        return [
            Error(
                f"{PREFIX}['PDQ_DISTANCE'] is {distance!r}; it must be an integer Hamming "
                "distance between 0 and 255.",
                hint="31 is the industry's threshold for PDQ matches.",
                id="nsfw_moderation.E024",
            )
        ]
    return []


# Without pdqhash nothing breaks: hash banks just never match. That belongs to
# `check --deploy`, not to every command of a project trying the app out.
@register(Tags.compatibility, deploy=True)
def check_pdqhash_installed(**kwargs: Any) -> list[CheckMessage]:
    """W006: hash banks and look-alike matching need the pdqhash package."""
    if importlib.util.find_spec("pdqhash") is None:
        return [
            Warning(
                "The pdqhash package is not installed: images get no PDQ hash, and neither "
                "hash banks nor look-alikes of rejected images are matched.",
                hint="pip install 'nsfw-moderation[blocklist]' (builds pdqhash from source).",
                id="nsfw_moderation.W006",
            )
        ]
    return []


@register(Tags.compatibility)
def check_on_reject(**kwargs: Any) -> list[CheckMessage]:
    if not conf.ON_REJECT:
        return []
    try:
        hook = import_string(conf.ON_REJECT)
    except ImportError as exc:
        hook, problem = None, str(exc)
    else:
        problem = "it is not callable"
    if callable(hook):
        return []
    return [
        Error(
            f"{PREFIX}['ON_REJECT'] {conf.ON_REJECT!r} cannot be used: {problem}.",
            hint="Give the dotted path of a function taking (row, obj), e.g. "
            "'nsfw_moderation.hooks.quarantine'.",
            id="nsfw_moderation.E017",
        )
    ]


@register(Tags.compatibility)
def check_owner(**kwargs: Any) -> list[CheckMessage]:
    """E021: ``OWNER`` must name a callable, or statements name nobody who may appeal."""
    if not conf.OWNER:
        return []
    try:
        owner_of = import_string(conf.OWNER)
    except ImportError as exc:
        owner_of, problem = None, str(exc)
    else:
        problem = "it is not callable"
    if callable(owner_of):
        return []
    return [
        Error(
            f"{PREFIX}['OWNER'] {conf.OWNER!r} cannot be used: {problem}.",
            hint="Give the dotted path of a function taking the object and returning its "
            "owner (a user) or None.",
            id="nsfw_moderation.E021",
        )
    ]


#: Seconds a SQLite connection should wait for another's write.
SQLITE_MIN_TIMEOUT = 20
#: What a SQLite database written by web processes and a worker at once needs.
SQLITE_OPTIONS_FOR_WORKERS: dict[str, Any] = {
    "transaction_mode": "IMMEDIATE",
    "timeout": SQLITE_MIN_TIMEOUT,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


@register(Tags.compatibility)
def check_sqlite_for_workers(**kwargs: Any) -> list[CheckMessage]:
    """W003: a SQLite database shared with a worker, without the options that make it work."""
    if conf.QUEUE == "sync":
        return []
    from nsfw_moderation.models import ModeratedImage

    alias = router.db_for_write(ModeratedImage)
    database = settings.DATABASES.get(alias, {})
    if "sqlite3" not in str(database.get("ENGINE", "")):
        return []
    missing = _missing_sqlite_options(database.get("OPTIONS") or {})
    if not missing:
        return []
    return [
        Warning(
            f"The SQLite database {alias!r} is written by your web processes and the "
            f"moderation worker at once, without {', '.join(missing)}: saves wait on each "
            "other and some moderation rows are only written later, by reconciliation.",
            hint=f"Set DATABASES[{alias!r}]['OPTIONS'] = {SQLITE_OPTIONS_FOR_WORKERS!r}, "
            "or use PostgreSQL.",
            id="nsfw_moderation.W003",
        )
    ]


def _missing_sqlite_options(options: Mapping[str, Any]) -> list[str]:
    missing = []
    if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        missing.append('transaction_mode "IMMEDIATE"')
    timeout = options.get("timeout", 5)
    if not isinstance(timeout, int | float) or timeout < SQLITE_MIN_TIMEOUT:
        missing.append("a timeout of 20 s or more")
    if "journal_mode=wal" not in str(options.get("init_command", "")).lower().replace(" ", ""):
        missing.append("WAL journal mode")
    return missing


@register(Tags.compatibility)
def check_quarantine_storage(**kwargs: Any) -> list[CheckMessage]:
    alias = conf.QUARANTINE_STORAGE
    wanted = alias or conf.ON_REJECT == "nsfw_moderation.hooks.quarantine"
    if not wanted or alias in getattr(settings, "STORAGES", {}):
        return []
    return [
        Error(
            f"{PREFIX}['QUARANTINE_STORAGE'] is {alias!r}, which is not an alias in "
            "settings.STORAGES."
            if alias
            else "ON_REJECT is 'nsfw_moderation.hooks.quarantine' but QUARANTINE_STORAGE "
            "is not set.",
            hint='Add a private storage to STORAGES (e.g. "quarantine": a FileSystemStorage '
            "outside MEDIA_ROOT, or a private bucket) and name it in QUARANTINE_STORAGE.",
            id="nsfw_moderation.E023",
        )
    ]


@register(Tags.compatibility)
def check_openvino(**kwargs: Any) -> list[CheckMessage]:
    if ALIASES.get(conf.BACKEND, conf.BACKEND) != ALIASES["openvino"]:
        return []
    if conf.PRECISION not in ("fp32", "bf16", "int8") or conf.DEVICE not in ("auto", "cpu"):
        return [
            Error(
                f"BACKEND 'openvino' runs on the CPU in fp32, bf16 or int8; PRECISION is "
                f"{conf.PRECISION!r} and DEVICE {conf.DEVICE!r}.",
                hint="Use the transformers backend for GPUs (DEVICE 'cuda', PRECISION 'fp16').",
                id="nsfw_moderation.E025",
            )
        ]
    return _converted_model_warnings()


def _converted_model_warnings() -> list[CheckMessage]:
    # Only where the runtime is installed: web nodes never run the model.
    version = model_cache.runtime_version()
    if version is None:
        return []
    try:
        key = model_cache.key_for(conf.MODEL, conf.PRECISION, version, conf.MODEL_REVISION)
    except model_cache.CacheError as exc:
        key, refused = None, str(exc).rstrip(".")
    else:
        refused = ""
    entry = model_cache.load(key) if key else None
    if refused:
        problem = refused
    elif entry is None:
        problem = f"there is no converted model in {model_cache.cache_root()}"
    elif not entry.meta.get("files"):
        # Not hashed here (every `manage.py` command runs the checks): only what workers refuse.
        problem = "the converted model records no SHA-256 of its files (an earlier version's)"
    elif problems := entry.agreement.problems():
        problem = f"the converted model is outside the accuracy limits: {'; '.join(problems)}"
    else:
        return []
    return [
        Warning(
            f"Workers cannot load {conf.MODEL!r} at {conf.PRECISION} with OpenVINO {version}: "
            f"{problem}.",
            hint="Run `manage.py nsfw_model optimize` on this machine (or copy OPENVINO_CACHE "
            "from one where it ran).",
            id="nsfw_moderation.W007",
        )
    ]


@register(Tags.compatibility)
def check_accuracy_limits(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not _is_probability(conf.MAX_SCORE_DIFFERENCE):
        errors.append(
            Error(
                f"{PREFIX}['MAX_SCORE_DIFFERENCE'] is {conf.MAX_SCORE_DIFFERENCE!r}; it must be "
                "a number between 0 and 1.",
                hint="The largest difference in any probability a converted model may show "
                "against fp32 (default 0.02).",
                id="nsfw_moderation.E026",
            )
        )
    flips = conf.MAX_VERDICT_FLIPS
    if not isinstance(flips, int) or isinstance(flips, bool) or flips < 0:
        errors.append(
            Error(
                f"{PREFIX}['MAX_VERDICT_FLIPS'] is {flips!r}; it must be an integer of 0 or more.",
                hint="How many calibration images may change verdict against fp32 (default 0).",
                id="nsfw_moderation.E027",
            )
        )
    return errors


@register(Tags.compatibility)
def check_audit_sample_rate(**kwargs: Any) -> list[CheckMessage]:
    """E028: ``AUDIT_SAMPLE_RATE`` is a share of verdicts, or one per audited verdict."""
    rate = conf.AUDIT_SAMPLE_RATE
    if isinstance(rate, Mapping):
        valid = set(rate) <= set(AUDITED_VERDICTS) and all(map(_is_probability, rate.values()))
    else:
        valid = _is_probability(rate)
    if valid:
        return []
    return [
        Error(
            f"{PREFIX}['AUDIT_SAMPLE_RATE'] is {rate!r}; it must be a number between 0 and 1, "
            f"or a dict of such numbers with the keys {' and '.join(AUDITED_VERDICTS)}.",
            hint="0.01 sends one automatic verdict in a hundred to the review queue for an audit.",
            id="nsfw_moderation.E028",
        )
    ]


@register(Tags.compatibility)
def check_shadow_model(**kwargs: Any) -> list[CheckMessage]:
    """E029: ``SHADOW_MODEL`` is ``None`` or a dict naming a ``MODEL``, with valid settings."""
    shadow = conf.SHADOW_MODEL
    if shadow is None:
        return []
    problem = ""
    if not isinstance(shadow, Mapping):
        problem = "it must be None or a dict"
    elif unknown := sorted(set(shadow) - set(SHADOW_KEYS)):
        problem = f"it has unknown keys {unknown}"
    elif not isinstance(shadow.get("MODEL"), str) or not shadow["MODEL"]:
        problem = "it must name a MODEL"
    elif "PRECISION" in shadow and shadow["PRECISION"] not in PRECISIONS:
        problem = f"its PRECISION must be one of {', '.join(PRECISIONS)}"
    elif "FLAG_THRESHOLD" in shadow and not _is_probability(shadow["FLAG_THRESHOLD"]):
        problem = "its FLAG_THRESHOLD must be a number between 0 and 1"
    elif "UNSAFE_LABELS" in shadow and not (
        isinstance(shadow["UNSAFE_LABELS"], (list, tuple))
        and shadow["UNSAFE_LABELS"]
        and all(isinstance(label, str) for label in shadow["UNSAFE_LABELS"])
    ):
        problem = "its UNSAFE_LABELS must be a non-empty list of labels"
    else:
        problem = _shadow_backend_problem(shadow)
    if not problem:
        return []
    return [
        Error(
            f"{PREFIX}['SHADOW_MODEL'] is {shadow!r}: {problem}.",
            hint=f"Keys: {', '.join(SHADOW_KEYS)}; each one the shadow model does not set is "
            "the live model's (except MODEL and MODEL_REVISION).",
            id="nsfw_moderation.E029",
        )
    ]


def _shadow_backend_problem(shadow: Mapping[str, Any]) -> str:
    """Why the shadow's backend (its own, else the live one's) cannot load its model, or ""."""
    path = str(shadow.get("BACKEND", conf.BACKEND))
    try:
        cls = import_string(ALIASES.get(path, path))
    except ImportError as exc:
        # When it is the live BACKEND, its own check (E013) reports it.
        return f"its BACKEND cannot be imported ({exc})" if "BACKEND" in shadow else ""
    accepted = constructor_arguments(cls)
    if accepted is not None and "model" not in accepted:
        return (
            f"its backend {path!r} cannot load another model (it takes no `model` argument); "
            "set its BACKEND to one that can, such as 'transformers'"
        )
    return ""


# --- The EU Transparency Database (its API v2 refuses any other value) -------------


@register(Tags.compatibility)
def check_statement_category(**kwargs: Any) -> list[CheckMessage]:
    """E031: ``STATEMENT_CATEGORY`` must be one of the Transparency Database's v2 categories."""
    from nsfw_moderation.transparency import CATEGORIES

    if conf.STATEMENT_CATEGORY in CATEGORIES:
        return []
    return [
        Error(
            f"{PREFIX}['STATEMENT_CATEGORY'] {conf.STATEMENT_CATEGORY!r} is not a category of "
            "the Transparency Database's API v2: it would refuse every statement.",
            hint="Nudity against your terms is 'STATEMENT_CATEGORY_OTHER_VIOLATION_TC' (the "
            "default; v1's PORNOGRAPHY_OR_SEXUALIZED_CONTENT is gone since July 2025). "
            f"One of: {', '.join(CATEGORIES)}.",
            id="nsfw_moderation.E031",
        )
    ]


@register(Tags.compatibility)
def check_statement_keywords(**kwargs: Any) -> list[CheckMessage]:
    """E032: ``STATEMENT_KEYWORDS`` are v2 keywords; ``STATEMENT_KEYWORD_OTHER`` fits 500."""
    from nsfw_moderation.transparency import KEYWORDS, LIMITS

    keywords = conf.STATEMENT_KEYWORDS
    valid = not isinstance(keywords, str) and all(keyword in KEYWORDS for keyword in keywords)
    limit = LIMITS["category_specification_other"]
    if valid and len(conf.STATEMENT_KEYWORD_OTHER) <= limit:
        return []
    return [
        Error(
            f"{PREFIX}['STATEMENT_KEYWORDS'] {keywords!r} must be a list of the Transparency "
            f"Database's v2 keywords, and STATEMENT_KEYWORD_OTHER at most {limit} characters.",
            hint="For nudity: ['KEYWORD_ADULT_SEXUAL_MATERIAL', 'KEYWORD_NUDITY'] (the "
            f"default). One or more of: {', '.join(KEYWORDS)}.",
            id="nsfw_moderation.E032",
        )
    ]


@register(Tags.compatibility)
def check_territorial_scope(**kwargs: Any) -> list[CheckMessage]:
    """E033: ``STATEMENT_TERRITORIAL_SCOPE`` is unset or a list of EU/EEA country codes."""
    from nsfw_moderation.transparency import COUNTRIES

    scope = conf.STATEMENT_TERRITORIAL_SCOPE
    if scope is None or (
        not isinstance(scope, str) and scope and all(code in COUNTRIES for code in scope)
    ):
        return []
    return [
        Error(
            f"{PREFIX}['STATEMENT_TERRITORIAL_SCOPE'] {scope!r} must be None (every EU and EEA "
            "country) or a non-empty list of their two-letter codes.",
            hint=f"Codes: {', '.join(COUNTRIES)}.",
            id="nsfw_moderation.E033",
        )
    ]


@register(Tags.compatibility)
def check_statement_ground(**kwargs: Any) -> list[CheckMessage]:
    """E034: ``STATEMENT_GROUND`` names the terms relied on, in at most 500 characters."""
    from nsfw_moderation.transparency import LIMITS

    limit = LIMITS["incompatible_content_ground"]
    if conf.STATEMENT_GROUND.strip() and len(conf.STATEMENT_GROUND) <= limit:
        return []
    return [
        Error(
            f"{PREFIX}['STATEMENT_GROUND'] must name the terms relied on in 1 to {limit} "
            f"characters (it has {len(conf.STATEMENT_GROUND)}).",
            hint="For example 'Terms of service, section 4: no sexual or nude content'.",
            id="nsfw_moderation.E034",
        )
    ]


@register(Tags.compatibility)
def check_transparency_api(**kwargs: Any) -> list[CheckMessage]:
    """E035: ``TRANSPARENCY_API_URL`` is https (http on this machine only); a positive timeout."""
    url, timeout = conf.TRANSPARENCY_API_URL, conf.TRANSPARENCY_TIMEOUT
    # The API token travels in a header: never in clear over a network.
    local = urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")
    secure = url.startswith("https://") or (url.startswith("http://") and local)
    if secure and _is_positive_number(timeout):
        return []
    return [
        Error(
            f"{PREFIX}['TRANSPARENCY_API_URL'] {url!r} must be an https URL (http only to "
            f"this machine, for tests) and "
            f"TRANSPARENCY_TIMEOUT ({timeout!r}) a positive number of seconds.",
            hint=f"The database's: {DEFAULTS['TRANSPARENCY_API_URL']!r}.",
            id="nsfw_moderation.E035",
        )
    ]
