"""Settings: one dict, ``DDT_PREFETCH_PANEL``, shared by the panel, ``detect()`` and test mode.

Validation lives here too, so the system checks (``checks.py``) and ``detect(**options)``
report the same problems with the same words.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from .findings import KINDS

SETTING_NAME = "DDT_PREFETCH_PANEL"
ALLOW_KEYS = ("model", "relation", "callsite", "sql", "kinds")

DEFAULTS: dict[str, Any] = {
    # A group of similar statements from one call site is an N+1 from this many repeats.
    # 1 is nplusone's mode: a single lazy relation load on a row of a result that could hold
    # several rows (an unsliced queryset, or one that returned several rows) is reported.
    "THRESHOLD": 2,
    # Finding kinds to report.
    "KINDS": list(KINDS),
    # Findings to ignore: dicts of fnmatch patterns, e.g. {"relation": "shop.Order.*"},
    # {"model": "auth.*"}, {"callsite": "*/legacy/*"}, {"sql": "*django_session*"},
    # optionally restricted to some kinds with "kinds": ["duplicate"].
    "ALLOW": [],
    # Include parameter values and SQL literals in findings (panel, Markdown, JSON).
    "SHOW_PARAMS": False,
    # Run EXPLAIN for index findings (SELECTs only, never on the user's request path).
    "EXPLAIN": True,
    # Create a suggested index in a rolled-back transaction to show the plan it gives.
    "EXPLAIN_TRY_INDEX": False,
    # A single statement slower than this is checked for missing indexes even if not repeated.
    "SLOW_QUERY_MS": 50,
    # No index advice on a table with fewer rows than this (counted up to this bound, capture
    # suspended): a table of a few rows is one page, where no plan differs. Kept low because dev
    # databases hold small samples of production's tables; 0 turns the check off.
    "INDEX_MIN_ROWS": 10,
    # Stack frames kept per finding.
    "MAX_FRAMES": 30,
    # Links that open file:line in an editor: a preset ("vscode", "pycharm", "sublime", "idea", ...)
    # or a URL pattern such as "vscode://file/{path}:{line}". None: plain text.
    "EDITOR_URL": None,
    # Replay every fix on the request's own data before showing it (prove.py). Off: fixes
    # are shown as "not verified".
    "PROOFS": True,
    # When the panel proves its fixes: "lazy" when its content is first rendered (DDT renders it
    # on click) or the "All requests" tab reads the request, so the page itself pays nothing;
    # "eager" at the end of the request; "off" never (as PROOFS=False). detect(), the crawl and the
    # pytest report always prove at the end of their block.
    "PROOF_MODE": "lazy",
    # Rows of the loop's queryset a replay loads (it runs at this count and at half of it).
    "PROOF_MAX_ROWS": 10,
    # Time all replays of one request may take together; fixes after that are not shown.
    "PROOF_BUDGET_MS": 300,
    # Query budgets against a baseline (pytest --n-plus-one-baseline, prefetch_report --baseline):
    # a test or page may run this many more queries than the baseline recorded before it is listed
    # (and, with --n-plus-one-fail / --fail-on new, fails). 0: any growth counts.
    "BUDGET_TOLERANCE": 0,
    # Project code is what lies under BASE_DIR (or the current directory) and not in
    # site-packages. Installed packages to treat as the project's (forked apps, a monorepo's
    # packages installed non-editable), by import name: ["oscar", "myco.shop"].
    "PROJECT_PACKAGES": [],
    # More directories of project code, e.g. a monorepo's sibling packages outside BASE_DIR.
    "PROJECT_ROOTS": [],
}
PROOF_MODES = ("lazy", "eager", "off")
# Read when code is classified, once per process (frames.py): settings only, not detect() options.
PROJECT_WIDE = ("PROJECT_PACKAGES", "PROJECT_ROOTS")

_TYPES: dict[str, tuple[type, ...]] = {
    "THRESHOLD": (int,),
    "KINDS": (list, tuple),
    "ALLOW": (list, tuple),
    "SHOW_PARAMS": (bool,),
    "EXPLAIN": (bool,),
    "EXPLAIN_TRY_INDEX": (bool,),
    "SLOW_QUERY_MS": (int, float),
    "INDEX_MIN_ROWS": (int,),
    "MAX_FRAMES": (int,),
    "EDITOR_URL": (str, type(None)),
    "PROOFS": (bool,),
    "PROOF_MODE": (str,),
    "PROOF_MAX_ROWS": (int,),
    "PROOF_BUDGET_MS": (int, float),
    "BUDGET_TOLERANCE": (int,),
    "PROJECT_PACKAGES": (list, tuple),
    "PROJECT_ROOTS": (list, tuple),
}


def get_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the project's setting, then per-call overrides.

    The settings file is lenient (an invalid value falls back to its default; the system
    checks name it); per-call overrides (``detect(**options)``) are strict: see
    :func:`check_options`.
    """
    config = dict(DEFAULTS)
    user = getattr(settings, SETTING_NAME, None)
    for key, value in (user if isinstance(user, dict) else {}).items():
        key = key.upper() if isinstance(key, str) else key
        if key in DEFAULTS and not setting_errors({key: value}):
            config[key] = value
    check_options(overrides or {})
    config.update({key.upper(): value for key, value in (overrides or {}).items()})
    return config


def check_options(options: dict[str, Any]) -> None:
    """Raise ``TypeError`` for an unknown option and ``ValueError`` for an invalid value.

    A typo in ``detect(THRESHOD=1)`` or ``detect(THRESHOLD=0)`` must not silently run with
    the defaults: the message names the valid keys (or what the value must be).
    """
    for key, value in options.items():
        name = key.upper() if isinstance(key, str) else key
        if name not in DEFAULTS:
            raise TypeError(f"Unknown option {key!r}; valid options: {', '.join(DEFAULTS)}.")
        if name in PROJECT_WIDE:
            raise ValueError(f"{name} is project-wide: set it in settings.{SETTING_NAME}, not per call.")
        errors = setting_errors({name: value})
        if errors:
            raise ValueError(" ".join(message for _id, message in errors))


def setting_errors(values: Any) -> list[tuple[str, str]]:
    """(check id, message) for every problem in a settings dict."""
    if not isinstance(values, dict):
        return [("E001", f"{SETTING_NAME} must be a dict, not {type(values).__name__}.")]
    errors: list[tuple[str, str]] = []
    for key, value in values.items():
        name = key.upper() if isinstance(key, str) else key
        if name not in DEFAULTS:
            errors.append(("E001", f"Unknown key {key!r} in {SETTING_NAME}; known keys: {', '.join(DEFAULTS)}."))
            continue
        types = _TYPES[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            errors.append(("E001", f"{SETTING_NAME}[{key!r}] must be {expected}, not {type(value).__name__}."))
            continue
        if name == "PROOF_MAX_ROWS" and value < 2:
            errors.append(("E001", f"{SETTING_NAME}['PROOF_MAX_ROWS'] must be at least 2."))
        if name == "INDEX_MIN_ROWS" and value < 0:
            errors.append(("E001", f"{SETTING_NAME}['INDEX_MIN_ROWS'] must be at least 0."))
        if name == "PROOF_MODE" and value not in PROOF_MODES:
            errors.append(("E001", f"{SETTING_NAME}['PROOF_MODE'] must be one of {', '.join(PROOF_MODES)}."))
        if name == "BUDGET_TOLERANCE" and value < 0:
            errors.append(("E001", f"{SETTING_NAME}['BUDGET_TOLERANCE'] must be at least 0."))
        if name == "THRESHOLD" and value < 1:
            errors.append(("E001", f"{SETTING_NAME}['THRESHOLD'] must be at least 1."))
        if name == "KINDS":
            unknown = [k for k in value if k not in KINDS]
            if unknown:
                errors.append(("E001", f"Unknown kinds {unknown} in {SETTING_NAME}['KINDS']; use {list(KINDS)}."))
        if name == "ALLOW":
            errors += allow_errors(value)
        if name in PROJECT_WIDE:
            errors += project_errors(name, value)
        if name == "EDITOR_URL":
            from .editor import pattern_error

            problem = pattern_error(value)
            if problem:
                errors.append(("E001", f"{SETTING_NAME}['EDITOR_URL'] {problem}."))
    return errors


def project_errors(name: str, values: list | tuple) -> list[tuple[str, str]]:
    """PROJECT_PACKAGES: dotted import names; PROJECT_ROOTS: existing directories."""
    errors: list[tuple[str, str]] = []
    for index, value in enumerate(values):
        where = f"{SETTING_NAME}[{name!r}][{index}]"
        if name == "PROJECT_PACKAGES":
            if not isinstance(value, str) or not all(part.isidentifier() for part in value.split(".")):
                errors.append(("E001", f"{where} must be an import name such as 'oscar' or 'myco.shop', not {value!r}."))
        elif not isinstance(value, (str, os.PathLike)) or not os.path.isdir(value):
            errors.append(("E001", f"{where} must be an existing directory, not {value!r}."))
    return errors


def allow_errors(entries: Any) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"{SETTING_NAME}['ALLOW'][{index}]"
        if not isinstance(entry, dict) or not entry:
            errors.append(("E002", f"{where} must be a non-empty dict with keys among {ALLOW_KEYS}."))
            continue
        unknown = [k for k in entry if k not in ALLOW_KEYS]
        if unknown:
            errors.append(("E002", f"{where} has unknown keys {unknown}; use {ALLOW_KEYS}."))
            continue
        for key, value in entry.items():
            if key == "kinds":
                if not isinstance(value, (list, tuple)) or any(k not in KINDS for k in value):
                    errors.append(("E002", f"{where}['kinds'] must be a list of {list(KINDS)}."))
            elif not isinstance(value, str):
                errors.append(("E002", f"{where}[{key!r}] must be a string pattern."))
        if isinstance(entry.get("model"), str) and not _models_matching(entry["model"]):
            errors.append(("E003", f"{where}['model'] = {entry['model']!r} matches no installed model."))
        if isinstance(entry.get("relation"), str) and not _relation_exists(entry["relation"]):
            errors.append(("E003", f"{where}['relation'] = {entry['relation']!r} matches no model field or relation."))
    return errors


def _models_matching(pattern: str) -> list[type]:
    from django.apps import apps

    return [m for m in apps.get_models() if fnmatchcase(m._meta.label, pattern) or
            fnmatchcase(m._meta.label_lower, pattern)]


def _relation_exists(pattern: str) -> bool:
    if "." not in pattern:
        return False
    model_part, _, field_part = pattern.rpartition(".")
    for model in _models_matching(model_part):
        names = set()
        for f in model._meta.get_fields():
            names.add(f.name)
            accessor = getattr(f, "get_accessor_name", None)
            if f.auto_created and not f.concrete and accessor:
                names.add(accessor() or f.name)
        if any(fnmatchcase(name, field_part) for name in names):
            return True
    return False


def is_allowed(finding: dict, entries: list[dict]) -> bool:
    """True when an allowlist entry matches the finding (every key of the entry must match)."""
    for entry in entries:
        if not isinstance(entry, dict) or not entry:
            continue
        kinds = entry.get("kinds")
        if kinds and finding.get("kind") not in kinds:
            continue
        if all(_matches(finding, key, pattern) for key, pattern in entry.items() if key != "kinds"):
            return True
    return False


def _matches(finding: dict, key: str, pattern: str) -> bool:
    if key == "model":
        return bool(finding.get("model")) and fnmatchcase(finding["model"], pattern)
    if key == "relation":
        return bool(finding.get("relation")) and fnmatchcase(finding["relation"], pattern)
    if key == "sql":
        return fnmatchcase(finding.get("sql") or "", pattern)
    if key == "callsite":
        frames = [finding.get("callsite")] + list(finding.get("callsites") or []) + list(finding.get("stack") or [])
        return any(
            frame and (fnmatchcase(frame["filename"], pattern) or
                       fnmatchcase(f"{frame['filename']}:{frame['lineno']}", pattern))
            for frame in frames
        )
    return False
