"""Python source text for values and names that go into copyable snippets.

One place decides which runtime values can be written back as source (the filters a loop
added to a related manager, a field's keyword arguments in index advice): anything else
yields ``None``, and the caller says why no snippet is shown.
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

# Values whose repr() is valid source once the module named here is imported.
_NEEDS_IMPORT = {Decimal: "from decimal import Decimal"}
_DATES = (datetime.datetime, datetime.date, datetime.time, datetime.timedelta)


def quote(text: str) -> str:
    """A double-quoted Python string literal."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def python_literal(value: Any) -> str | None:
    """Source text that evaluates to ``value``, or ``None`` when there is no plain one."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Decimal):
        return f'Decimal("{value}")' if value.is_finite() else None
    if isinstance(value, _DATES) and getattr(value, "tzinfo", None) is None:
        return "datetime." + repr(value).removeprefix("datetime.")
    if isinstance(value, (list, tuple)):
        items = [python_literal(v) for v in value]
        if any(item is None for item in items):
            return None
        if isinstance(value, tuple):
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return "[" + ", ".join(items) + "]"
    return None


def literal_imports(source: str) -> list[str]:
    """Import lines a snippet built from :func:`python_literal` texts needs."""
    lines = []
    if "Decimal(" in source:
        lines.append(_NEEDS_IMPORT[Decimal])
    if "datetime." in source:
        lines.append("import datetime")
    return lines
