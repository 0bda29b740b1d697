"""Findings as plain data: :class:`Finding`, :class:`Report`, kind labels, frame helpers.

Everything here is JSON-serializable and importable without running an analysis: the
panel renders stored findings (possibly from another process) with these classes, test
mode formats failures with them, and the exports (``report.py``) read them.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from .capture import Record
from .frames import Frame, StackResolver, shown_location
from .group import fingerprint as sql_fingerprint
from .group import redact_sql

# The one place finding kinds are named: settings validation, the panel, test mode and
# Markdown all read this.
KIND_TITLES = {
    "n_plus_one": "N+1",
    "duplicate": "duplicate",
    "missing_index": "missing index",
    "unused_prefetch": "unused prefetch",
}
KINDS = tuple(KIND_TITLES)


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind)


def display_path(filename: str) -> str:
    """A file as exports show it: relative to the project root (``BASE_DIR``), a library's
    import path (``modelcluster/fields.py``), ``<python>/...`` for the standard library; never
    an absolute path of this machine (see :func:`frames.shown_location`)."""
    return shown_location(filename).path


def frame_location(filename: str) -> dict:
    """``filename`` as shown, plus ``distribution`` and ``version`` for an installed package's file."""
    location = shown_location(filename)
    data = {"filename": location.path}
    if location.distribution:
        data["distribution"] = location.distribution
        data["version"] = location.version
    return data


def frame_dict_from(data: dict) -> dict:
    """A frame as plain data: the one place a frame's file becomes what exports show. A
    template's name stays as it is unless it is an absolute path."""
    filename = str(data.get("filename") or "")
    if data.get("template") and not os.path.isabs(filename):
        return dict(data)
    return {**data, **frame_location(filename)}


def frame_dict(frame: Frame | None) -> dict | None:
    if frame is None:
        return None
    return frame_dict_from(frame.to_dict())


def model_label(model: type | None) -> str | None:
    """``app_label.ModelName`` as findings name a model."""
    return model._meta.label if model is not None else None


def defined_at(hop: Any) -> dict | None:
    """Where a relation hop's field is declared, as a frame (``Finding.defined_at``)."""
    if hop is None:
        return None
    from .relate import definition_site  # at analysis time only: this module stays light to import

    site = definition_site(hop.field)
    if site is None:
        return None
    return frame_dict_from(site)


@dataclass
class Finding:
    """One problem in a request, with where it happens and how to fix it."""

    kind: str
    model: str | None
    relation: str | None
    lookup: str | None
    method: str | None
    count: int
    avoidable: int
    duration_ms: float
    sql: str
    callsite: dict | None
    stack: list[dict]
    origin: dict | None
    snippets: dict[str, str] = field(default_factory=dict)
    # Details shown by the panel (plain data as well).
    relation_kind: str | None = None
    related_model: str | None = None
    defined_at: dict | None = None
    evaluated_at: dict | None = None
    # The line that reads the relation, when it is not the call site (``latest = t.posts.order_by(...)[:2]``
    # stored, then iterated below): where ``snippets["access"]`` goes.
    access_at: dict | None = None
    callsites: list[dict] = field(default_factory=list)
    alias: str = "default"
    note: str | None = None
    # missing_index: {"database", "plan": [lines], "uses_index", "after": [lines] | None, "error"}
    evidence: dict | None = None
    params: list[str] | None = None  # sample parameter values, only with SHOW_PARAMS
    # Built and looped by library code: the project's frames only call into it (issue 12).
    library: bool = False
    # How the fix was checked on this request's own data (prove.py):
    # {"status": "verified" | "failed" | "skipped", "before", "after", "rows", "detail"}.
    proof: dict | None = None
    fix_id: int | None = None  # index into Report.fixes when part of a combined fix
    # Where to act (place.py): {"file", "line", "code", "kind"}; kind is "queryset", "class_attr",
    # "override" or "upstream" (then also "package" and "version", and no paste-able line).
    place: dict | None = None
    # The repeat is a test's own setup loop (test module code): listed apart, never fails a run.
    test_code: bool = False
    # N+1: how many of its statements repeated an earlier one exactly (never a second finding).
    identical: int = 0
    # What tells this finding from a sibling on the same line that follows the same relation with
    # other filter values (``draft=True`` beside ``draft=False``): part of its label and identity.
    variant: str | None = None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model,
            "relation": self.relation,
            "lookup": self.lookup,
            "method": self.method,
            "count": self.count,
            "avoidable": self.avoidable,
            "duration_ms": self.duration_ms,
            "sql": self.sql,
            "callsite": self.callsite,
            "stack": self.stack,
            "origin": self.origin,
            "snippets": dict(self.snippets),
            "relation_kind": self.relation_kind,
            "related_model": self.related_model,
            "defined_at": self.defined_at,
            "evaluated_at": self.evaluated_at,
            "access_at": self.access_at,
            "callsites": self.callsites,
            "alias": self.alias,
            "note": self.note,
            "evidence": self.evidence,
            "params": self.params,
            "library": self.library,
            "proof": self.proof,
            "fix_id": self.fix_id,
            "place": self.place,
            "test_code": self.test_code,
            "identical": self.identical,
            "variant": self.variant,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def fingerprint(self) -> str:
        """What tells this problem apart across runs, machines and line moves (baselines, SARIF)."""
        return finding_fingerprint({"kind": self.kind, "relation": self.relation, "model": self.model,
                                    "sql": self.sql, "callsite": self.callsite, "place": self.place,
                                    "origin": self.origin, "variant": self.variant})

    @property
    def title(self) -> str:
        subject = finding_subject({"relation": self.relation, "model": self.model,
                                   "relation_kind": self.relation_kind}) or "query"
        return f"{kind_title(self.kind)}: {subject}" + (f" [{self.variant}]" if self.variant else "")

    def to_markdown(self) -> str:
        return _finding_markdown(self)

    def markdown_item(self, number: int) -> str:
        """One numbered list item for a report, below the summary table that already gives the
        kind, relation, counts, proof and call site: the origin, the fix and the shortened SQL."""
        return _markdown_item(self, number)


def finding_subject(finding: dict) -> str | None:
    """What a finding is about, as titles and tables name it: the relation (``proofs.Page.articlepage
    (downcast)`` for a row loaded again as its child model), else the model (``proofs.Product loaded
    by pk per hit`` for rows loaded one by one by key)."""
    relation, model, kind = finding.get("relation"), finding.get("model"), finding.get("relation_kind") or ""
    if relation:
        return f"{relation} (downcast)" if kind == "downcast" else relation
    if model and kind.startswith("loaded by "):
        return f"{model} {kind}"
    return model


def finding_fingerprint(finding: dict) -> str:
    """A finding's stable identity: its kind, its relation (or, without one, its model and SQL
    shape), the call site's file name, function and source text, and where the fix goes (the
    place's file name, kind and class, the function that builds the queryset). Never a line
    number nor a directory, so it survives lines moving in a file and a checkout in another
    directory; editing the line that repeats changes it, editing the queryset's line does not."""
    callsite = finding.get("callsite") or {}
    place = finding.get("place") or {}
    origin = finding.get("origin") or {}
    subject = finding.get("relation") or f"{finding.get('model')} {sql_fingerprint(finding.get('sql') or '')}"
    parts = (
        finding.get("kind"), subject,
        _basename(callsite.get("filename")), _scope(callsite.get("function")), _code(callsite.get("code")),
        _basename(place.get("file")), place.get("kind"), place.get("class"), place.get("attr"),
        _scope(origin.get("function")),
    ) + ((finding["variant"],) if finding.get("variant") else ())
    key = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _scope(function: Any) -> str | None:
    """A function's name as every Python names it: 3.12 inlines list, dict and set
    comprehensions (PEP 709), so ``view.<listcomp>`` on 3.11 is ``view`` there."""
    return re.sub(r"\.<(?:listcomp|dictcomp|setcomp)>", "", function) if isinstance(function, str) else function


def _basename(path: Any) -> str:
    return str(path or "").replace("\\", "/").rsplit("/", 1)[-1]


def _code(text: Any) -> str:
    return " ".join(str(text or "").split())


def where(frame: dict | None, unknown: str = "unknown", with_function: bool = True) -> str:
    """``file:line in function`` of a frame dict (templates have no function)."""
    if not frame:
        return unknown
    package = ""
    if frame.get("distribution"):  # a library's file: which release the line belongs to
        package = " (" + " ".join(str(p) for p in (frame["distribution"], frame.get("version")) if p) + ")"
    return f"{frame['filename']}:{frame['lineno']}{package}" + (
        f" in {frame['function']}" if with_function and frame.get("function") and not frame.get("template") else ""
    )


def _finding_markdown(finding: Finding) -> str:
    """Short enough to paste in a chat or a PR: where, the fix and its proof, a shortened SQL
    (the full statement is in the JSON)."""
    lines = [f"### {finding.title}", "", _facts(finding)]
    snippets = finding.snippets or {}
    proof = getattr(finding, "proof", None) or {}
    fix = snippets.get("line") or snippets.get("fix")
    act = finding.place or {}
    if act.get("kind") == "upstream":
        lines += ["", f"Upstream: built and looped inside {act.get('package')} {act.get('version') or ''}".rstrip()
                  + f" at `{place_where(act)}`; nothing in your project to paste."]
    elif fix and proof.get("status") != "failed":
        shown = place_where(act) if act.get("file") else where(finding.origin, with_function=False) if finding.origin else ""
        place = f" at `{shown}`" if snippets.get("line") and shown else ""
        imports = [line for line in (snippets.get("import") or "").splitlines() if line]
        lines += ["", f"Fix{place}{proof_text(proof)}:", "", fence(fix), *imports, fix, "```"]
        if snippets.get("access"):
            lines += ["", "and at the call site:", "", fence(snippets["access"]), snippets["access"], "```"]
    elif fix:
        lines += ["", f"No paste-able fix{proof_text(proof)}."]
    for key, label in _PLACED_SNIPPETS:
        if snippets.get(key) and proof.get("status") != "failed":
            if key == "override" and act.get("kind") == "override":
                label = f"{label}, in `{act.get('class')}` (`{place_where(act)}`)"
            lines += ["", f"{label}:", "", fence(snippets[key]), snippets[key], "```"]
    if finding.note:
        lines += ["", finding.note]
    lines += ["", f"SQL: `{short_sql(finding.sql)}`"]
    if finding.params is not None:
        lines.append(f"Parameters: `{', '.join(finding.params)}`")
    evidence = finding.evidence or {}
    if evidence.get("plan"):
        lines.append(f"Plan ({evidence.get('database')}): `{evidence['plan'][0].strip()}`"
                     + (f", with the index: `{evidence['after'][0].strip()}`" if evidence.get("after") else ""))
    return "\n".join(lines) + "\n"


def fence(code: str) -> str:
    """The opening of a Markdown code block for ``code``: a template's language for template
    code (``{% ... %}``, ``{{ ... }}``), Python otherwise."""
    return "```django" if code.lstrip().startswith(("{%", "{{", "{#")) else "```python"


def place_where(place: dict) -> str:
    """``file:line`` of a place dict."""
    return f"{place.get('file')}:{place.get('line')}"


def place_is_origin(place: dict | None, origin: dict | None) -> bool:
    """Whether a finding's place is its origin line itself (then the origin says it all)."""
    place, origin = place or {}, origin or {}
    return (place.get("file"), place.get("line")) == (origin.get("filename"), origin.get("lineno"))


def _markdown_item(finding: Finding, number: int) -> str:
    snippets = finding.snippets or {}
    proof = getattr(finding, "proof", None) or {}
    parts = []
    if finding.kind == "duplicate":
        others = [f"`{where(f, with_function=False)}`" for f in finding.callsites[1:]]
        fix = snippets.get("fix") or ""
        code = [line.strip() for line in fix.splitlines() if line.strip() and not line.lstrip().startswith("# in ")]
        if snippets.get("in_loop"):  # a query or tag that reads nothing of its loop (advise.py)
            parts.append(f"above the loop `{fix}`, inside it `{snippets['in_loop']}`")
        elif code and not re.match(r"# \d+ identical queries", fix):  # concrete advice (advise.py)
            parts.append(f"fix `{code[0]}`" + (" …" if len(code) > 1 else ""))
        else:
            parts.append("reuse the first result" + (f"; also from {', '.join(others)}" if others else ""))
    else:
        act = finding.place or {}
        if act.get("file") and not (finding.origin and place_is_origin(act, finding.origin)):
            parts.append(f"{'upstream' if act.get('kind') == 'upstream' else 'act at'} `{place_where(act)}`")
        elif finding.origin:
            same_file = finding.callsite and finding.callsite.get("filename") == finding.origin.get("filename")
            parts.append(f"origin line {finding.origin['lineno']}" if same_file
                         else f"origin `{where(finding.origin, with_function=False)}`")
        if snippets.get("fix") and proof.get("status") != "failed":
            fix = snippets["fix"] if "\n" not in snippets["fix"] else snippets["fix"].splitlines()[-1].strip()
            parts.append(f"fix `{fix}`")
            if snippets.get("access"):
                parts.append(f"loop `{snippets['access']}`")
        elif finding.note:
            parts.append(finding.note)
    parts.append(f"`{short_sql(finding.sql)}`")
    if finding.params is not None:
        parts.append(f"parameters `{', '.join(finding.params)}`")
    return f"{number}. " + "; ".join(parts)


# Fixes that go somewhere else than the origin line (frameworks.py), as the panel labels them.
_PLACED_SNIPPETS = (
    ("override", "Override in your project"),
    ("get_queryset", "Or in the type's get_queryset()"),
    ("hints", "Or as the field's optimizer hints"),
    ("conditional", "Conditionally, where the queryset is shared"),
)


def _facts(finding: Finding) -> str:
    callsite = finding.callsite or {}
    function = callsite.get("function") or ""
    # A framework declaration (a serializer field, a GraphQL type's field) is named by it.
    named = f" ({function})" if "." in function or "→" in function else ""
    identical = f" ({finding.identical} identical repeats)" if finding.identical else ""
    parts = [f"{finding.count} queries{identical}, {finding.avoidable} avoidable",
             f"call site `{where(finding.callsite, with_function=False)}`{named}"]
    if len(finding.callsites) > 1:
        parts[-1] += f" (+{len(finding.callsites) - 1} more)"
    if finding.origin:
        parts.append(f"origin `{where(finding.origin, with_function=False)}`")
    act = finding.place or {}
    if act.get("file") and finding.origin and not place_is_origin(act, finding.origin):
        parts.append(f"{'upstream' if act.get('kind') == 'upstream' else 'act here'} `{place_where(act)}`")
    return " · ".join(parts)


def proof_text(proof: dict | None) -> str:
    """`` (verified: 10 → 1 queries)`` and the like, empty without a proof."""
    if not proof or not proof.get("status"):
        return ""
    if proof["status"] == "verified":
        page = (f"; this page: {proof['page_before']} → {proof['page_after']}" if proof.get("page_after") is not None
                else "")
        return f" (verified: {proof.get('before')} → {proof.get('after')} queries{page})"
    detail = f": {proof['detail']}" if proof.get("detail") else ""
    return f" ({proof['status']}{detail})"


def note_without_proof(note: str | None, proof: dict | None) -> str | None:
    """A finding's note without the sentence that repeats its unproven fix's proof (for
    displays that show the proof on its own: the panel, test mode)."""
    if not note or not proof or proof.get("status") == "verified" or not proof.get("detail"):
        return note
    detail = proof["detail"]
    at = note.find(detail)
    if at < 0:
        return note
    start = note.rfind(". ", 0, at)  # the sentence that carries the detail goes
    start = 0 if start < 0 else start + 1
    rest = (note[:start] + note[at + len(detail):]).strip()
    return rest if rest.strip(".") else None


PASTEABLE = ("fix", "line", "queryset", "access", "import", "bulk")


def withdraw_fix(finding: Finding, proof: dict) -> None:
    """No paste-able line for a fix that is not proven; say what was tried and why."""
    tried = proof.get("fix") or finding.snippets.get("fix")
    for key in PASTEABLE:
        finding.snippets.pop(key, None)
    finding.method = None
    if proof["status"] == "failed" and " Then " not in proof["detail"] and tried:
        reason = f"No fix is shown: {tried} was replayed on this request's data and failed: {proof['detail']}"
    else:
        reason = f"No fix is shown: {proof['detail']}"
    finding.note = f"{finding.note} {reason}" if finding.note else reason


def proof_cell(proof: dict | None) -> str:
    if not proof or not proof.get("status"):
        return "—"
    if proof["status"] == "verified":
        return f"{proof.get('before')}→{proof.get('after')}"
    return str(proof["status"])


_SQL_CLAUSE = re.compile(
    r"\b(SELECT|FROM|(?:(?:NATURAL\s+)?(?:LEFT|RIGHT|FULL|INNER|CROSS)\s+(?:OUTER\s+)?)?JOIN|WHERE|GROUP\s+BY|"
    r"HAVING|ORDER\s+BY|LIMIT|OFFSET|UNION(?:\s+ALL)?|INSERT\s+INTO|VALUES|UPDATE|SET|DELETE\s+FROM|RETURNING|"
    r"ON\s+CONFLICT)\b",
    re.IGNORECASE,
)
# Clauses whose first word (a table) is kept.
_NAMED = ("FROM", "JOIN", "INSERT", "UPDATE", "DELETE")


def _top_level(sql: str) -> str:
    """``sql`` with quoted text and parenthesised parts blanked (same length), so clause
    keywords are found at the statement's own level only."""
    out, depth, quote = [], 0, None
    for char in sql:
        if quote:
            out.append(" ")
            if char == quote:
                quote = None
            continue
        if char in "'\"`[":
            quote = "]" if char == "[" else char
            out.append(" " if depth else char)
            continue
        if char == "(":
            depth += 1
            out.append(" ")
        elif char == ")":
            depth = max(0, depth - 1)
            out.append(" ")
        else:
            out.append(" " if depth else char)
    return "".join(out)


def short_sql(sql: str) -> str:
    """``SELECT … FROM "shop_pizza" INNER JOIN … WHERE …``: the clauses and the main table only."""
    text = " ".join((sql or "").split())
    matches = list(_SQL_CLAUSE.finditer(_top_level(text)))
    if not matches:
        return text if len(text) <= 80 else text[:79] + "…"
    parts = []
    for index, match in enumerate(matches):
        keyword = " ".join(match.group(1).upper().split())
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        rest = text[match.end():end].strip()
        if keyword.split()[0] in _NAMED:
            table = rest.split(" ", 1)[0] if rest and not rest.startswith("(") else ("(…)" if rest else "")
            more = rest[len(table):].strip() if table != "(…)" else ""
            parts.append(" ".join(p for p in (keyword, table, "…" if more else "") if p))
        else:
            parts.append(f"{keyword} …" if rest else keyword)
    return " ".join(parts)


def statement_text(sql: str, limit: int = 160) -> str:
    """A statement's shape as budgets list it: literals as ``?``, a SELECT's column list as ``…``
    (the tables and conditions tell statements apart), at most ``limit`` characters."""
    text = sql_fingerprint(sql or "")
    for spaced, tight in ((" . ", "."), ("( ", "("), (" )", ")"), (" , ", ", ")):
        text = text.replace(spaced, tight)
    if text.upper().startswith("SELECT "):
        match = re.search(r"\bFROM\b", _top_level(text), re.IGNORECASE)
        if match:
            text = f"SELECT … {text[match.start():]}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Report:
    """The findings of one request or one ``detect()`` block, most avoidable first."""

    def __init__(self, findings: list[Finding] | None = None, summary: dict | None = None,
                 fixes: list[dict] | None = None) -> None:
        self.findings: list[Finding] = findings or []
        self.summary: dict = summary or {"queries": 0, "duration_ms": 0.0}
        # One combined, proven fix per root queryset: {"origin", "fix", "line", "lookups",
        # "findings" (indices into findings), "proof", "import"}.
        self.fixes: list[dict] = fixes or []

    def __repr__(self) -> str:
        return f"<Report {len(self.findings)} findings, {self.summary.get('queries', 0)} queries>"

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def by_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "summary": dict(self.summary),
            "findings": [f.to_dict() for f in self.findings],
            "fixes": [dict(fix) for fix in self.fixes],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls([Finding.from_dict(f) for f in data.get("findings", [])], dict(data.get("summary", {})),
                   [dict(fix) for fix in data.get("fixes", [])])

    def to_markdown(self) -> str:
        """A summary table first (kind, relation, count, avoidable, proof, where), then each finding."""
        summary = self.summary
        head = [
            f"## ddt-prefetch-panel: {summary.get('queries', 0)} queries, {summary.get('n_plus_one', 0)} N+1, "
            f"{summary.get('avoidable', 0)} avoidable",
            "",
        ]
        if not self.findings:
            return "\n".join(head + ["No repeated queries."]) + "\n"
        head += markdown_table([f.to_dict() for f in self.findings]) + [""]
        head += fixes_markdown(self.fixes)
        items = [f.markdown_item(number) for number, f in enumerate(self.findings, 1)]
        return "\n".join(head + items) + "\n"


def fixes_markdown(fixes: list[dict]) -> list[str]:
    """One block per combined fix (one root queryset, several findings): where to paste, the
    proven line, its imports and proof. A fix of one finding is on that finding's own line."""
    lines: list[str] = []
    for number, fix in enumerate(fixes, 1):
        if len(fix.get("findings", [])) < 2:
            continue
        proof = fix.get("proof") or {}
        members = ", ".join(f"#{i + 1}" for i in fix.get("findings", []))
        lines.append(f"**Fix {number}** (findings {members}) at `{where(fix.get('origin'))}`"
                     f"{proof_text(proof)}:")
        code = [line for line in (fix.get("import") or "").splitlines() if line]
        code.append(fix.get("line") or fix.get("fix") or "")
        lines += ["", "```python", *code, "```", ""]
        for access in fix.get("access") or []:
            lines += [f"and in the loop at `{where(access.get('callsite'))}`:", "", "```",
                      access.get("line", ""), "```", ""]
    return lines


def markdown_table(findings: list[dict], seen: bool = False) -> list[str]:
    """Summary table rows of finding dicts (``seen``: how many requests or tests had each)."""
    columns = ["#", "kind", "relation"] + (["seen"] if seen else []) + ["count", "avoidable", "proof", "where"]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for number, finding in enumerate(findings, 1):
        cells = [str(number), kind_title(finding.get("kind", "")),
                 f"`{finding_subject(finding) or '?'}`"
                 + (f" [{finding['variant']}]" if finding.get("variant") else "")]
        if seen:
            cells.append(str(finding.get("occurrences", 1)))
        cells += [str(finding.get("count", 0)), str(finding.get("avoidable", 0)), proof_cell(finding.get("proof")),
                  f"`{where(finding.get('callsite'), with_function=False)}`"]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


@dataclass
class Context:
    """What every finding builder needs: the settings in force and the stack resolver."""

    resolve: StackResolver
    show_params: bool
    max_frames: int
    threshold: int = 2
    kinds: frozenset[str] = frozenset(KINDS)

    @classmethod
    def from_config(cls, config: dict) -> Context:
        return cls(
            resolve=StackResolver(),
            show_params=bool(config.get("SHOW_PARAMS", False)),
            max_frames=int(config.get("MAX_FRAMES", 30)),
            threshold=max(1, int(config.get("THRESHOLD", 2))),
            kinds=frozenset(config.get("KINDS", KINDS)),
        )

    def stack(self, raw: tuple | None) -> list[dict]:
        return [frame_dict(f) for f in self.resolve(raw)[: self.max_frames]]

    def first_frame(self, raw: tuple | None) -> dict | None:
        frames = self.resolve(raw)
        return frame_dict(frames[0]) if frames else None

    def sql(self, record: Record) -> str:
        return record.sql if self.show_params else redact_sql(record.sql)

    def params(self, record: Record) -> list[str] | None:
        if not self.show_params or record.params is None:
            return None
        values = record.params if isinstance(record.params, (list, tuple)) else [record.params]
        return [short_repr(v) for v in values]


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a parameter whose repr fails must not break the report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."
