"""frames.py's pure helpers behind issue 12: class-body declarations, the call-site choice
between a framework declaration and project code, and project-or-library decisions."""

from __future__ import annotations

import dataclasses

from ddt_prefetch_panel.frames import Frame, callsite_of, declaration_line, is_library_file, mentioned_line
from tests.frameworks.catalog import api, forms, models
from tests.frameworks.lines import line_of


def test_declaration_line_reads_the_class_body_not_a_method():
    # Book.clean() assigns a local named like the field; the field is declared on the abstract base.
    filename, lineno, code = declaration_line(models.Book, "imprint")
    assert filename.endswith("tests/frameworks/catalog/models.py")
    assert lineno == line_of("catalog/models.py", "    imprint = models.ForeignKey(")
    assert code.startswith("imprint = models.ForeignKey(")


def test_declaration_line_finds_fields_methods_and_inherited_names():
    assert declaration_line(api.AuthorSerializer, "books")[1] == line_of(
        "catalog/api.py", "    books = BookBriefSerializer(many=True)")
    assert declaration_line(api.AuthorSerializer, "get_display")[1] == line_of(
        "catalog/api.py", "    def get_display(self, author):")
    assert declaration_line(forms.CopyForm, "book")[1] == line_of("catalog/forms.py", "    book = forms.ModelChoiceField(")
    assert declaration_line(api.AuthorSerializer, "no_such_field") is None


def test_mentioned_line_finds_a_field_named_in_meta_else_the_class_line():
    assert mentioned_line(api.BookBriefSerializer, "title")[1] == line_of(
        "catalog/api.py", 'fields = ["id", "title"]')
    assert mentioned_line(api.BookBriefSerializer, "nothing")[2] == "class BookBriefSerializer(serializers.ModelSerializer):"


def _frame(function: str, qualname: str = "", declares: str = "", template: bool = False) -> Frame:
    return Frame("x.py", 1, function, "", template, qualname=qualname, declares=declares)


def test_callsite_prefers_the_declaration_over_code_the_framework_called():
    model_str = _frame("__str__", qualname="Book.__str__")
    field = _frame("CopyForm.book", declares="CopyForm")
    view = _frame("copy_form", qualname="copy_form")
    assert callsite_of((model_str, field, view)) is field


def test_callsite_keeps_the_declaring_classs_own_method():
    helper = _frame("format_author", qualname="format_author")
    method = _frame("get_display", qualname="AuthorSerializer.get_display")
    field = _frame("AuthorSerializer.display", declares="AuthorSerializer")
    assert callsite_of((helper, method, field)) is method


def test_callsite_without_declarations_is_the_innermost_project_frame():
    inner, outer = _frame("a", qualname="a"), _frame("b", qualname="b")
    assert callsite_of((inner, outer)) is inner
    assert callsite_of(()) is None


def test_frame_dicts_do_not_carry_analysis_only_details():
    frame = dataclasses.replace(_frame("f", qualname="C.f", declares="C"), detail=("self", object))
    assert set(frame.to_dict()) == {"filename", "lineno", "function", "code", "template"}


def test_project_and_library_files(settings, tmp_path):
    import django
    import rest_framework

    assert is_library_file(rest_framework.__file__)
    assert is_library_file(django.__file__)
    assert not is_library_file(api.__file__)
    settings.DDT_PREFETCH_PANEL = {"PROJECT_PACKAGES": ["rest_framework"]}
    assert not is_library_file(rest_framework.__file__)  # a fork treated as the project's
    assert is_library_file(django.__file__)
