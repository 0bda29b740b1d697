from __future__ import annotations

import pytest
from django.template import Context, Engine

from ddt_prefetch_panel import capture as cap
from ddt_prefetch_panel import frames as frames_module
from ddt_prefetch_panel.frames import is_library_file, tidy_stack
from ddt_prefetch_panel.group import fingerprint, redact_sql


@pytest.mark.parametrize(
    "a, b",
    [
        ('SELECT * FROM "t" WHERE "id" IN (%s, %s)', 'SELECT * FROM "t" WHERE "id" IN (%s, %s, %s, %s, %s)'),
        ("SELECT * FROM t WHERE name = 'ann' LIMIT 21", "SELECT * FROM t WHERE name = 'it''s bob' LIMIT 3"),
        ("select a from t where x = %s", "SELECT a   FROM t\n WHERE x = ?"),
        ("SELECT a FROM t WHERE x = $1", "SELECT a FROM t WHERE x = %(name)s"),
        ("SELECT a FROM t WHERE x = -1.5e3", "SELECT a FROM t WHERE x = 42"),
        ("INSERT INTO t (a, b) VALUES (%s, %s)", "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), (%s, %s)"),
    ],
)
def test_fingerprint_normalises_values_and_in_lists(a, b):
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ('SELECT * FROM "shop_order" WHERE "id" = %s', 'SELECT * FROM "shop_pizza" WHERE "id" = %s'),
        ('SELECT "a" FROM "t" WHERE "x" = %s', 'SELECT "b" FROM "t" WHERE "x" = %s'),
        ('SELECT * FROM "t" WHERE "x" = %s', 'SELECT * FROM "t" WHERE "x" IN (%s)'),
        ('SELECT * FROM "T1" WHERE x = 1', 'SELECT * FROM "t1" WHERE x = 1'),
    ],
)
def test_fingerprint_keeps_tables_and_columns_apart(a, b):
    assert fingerprint(a) != fingerprint(b)


def test_fingerprint_does_not_treat_quoted_identifiers_as_literals():
    assert '"shop_order"' in fingerprint('SELECT * FROM "shop_order" WHERE "id" = 3')
    assert "col2" in fingerprint("SELECT col2 FROM t2")


def test_redact_sql_replaces_literals_only():
    assert redact_sql("SELECT \"t\".\"a2\" FROM t WHERE b = 'secret' AND c = 42") == (
        "SELECT \"t\".\"a2\" FROM t WHERE b = ? AND c = ?"
    )


def _here():
    return frames_module.raw_stack(0)


def test_tidy_stack_keeps_user_frames_only():
    frames = tidy_stack(_here())
    assert frames[0].function == "_here"
    assert frames[0].filename.endswith("tests/test_group.py")
    assert frames[0].code == "return frames_module.raw_stack(0)"
    assert frames[1].function == "test_tidy_stack_keeps_user_frames_only"
    assert all(not is_library_file(f.filename) for f in frames)
    assert not any("_pytest" in f.filename or "pluggy" in f.filename for f in frames)


def test_library_files_are_recognised():
    import django
    import debug_toolbar
    import json

    import ddt_prefetch_panel

    assert is_library_file(django.__file__)
    assert is_library_file(debug_toolbar.__file__)
    assert is_library_file(json.__file__)
    assert is_library_file(ddt_prefetch_panel.__file__)
    assert is_library_file("<frozen importlib._bootstrap>")
    assert not is_library_file(__file__)


def test_template_frames_are_named_by_template_and_line():
    captured = []

    class Probe:
        def __str__(self):
            captured.append(frames_module.raw_stack(0))
            return "x"

    engine = Engine(debug=True, loaders=[("django.template.loaders.locmem.Loader", {
        "page.html": "<p>\n{% for item in items %}\n  {{ item }}\n{% endfor %}</p>",
    })])
    engine.get_template("page.html").render(Context({"items": [Probe()]}))
    frames = tidy_stack(captured[0])
    templates = [f for f in frames if f.template]
    assert (templates[0].filename, templates[0].lineno, templates[0].code) == ("page.html", 3, "{{ item }}")
    assert (templates[1].filename, templates[1].lineno, templates[1].code) == (
        "page.html", 2, "{% for item in items %}"
    )
