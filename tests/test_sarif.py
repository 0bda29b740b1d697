"""SARIF 2.1.0: valid against the object model of a maintained binding, and what review tools read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from pydantic import BaseModel
from sarif_pydantic import Sarif

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.patch import finding_patch
from ddt_prefetch_panel.sarif import to_sarif
from shop import views

pytestmark = pytest.mark.django_db


def _findings(*view_names: str) -> list[dict]:
    request = RequestFactory().get("/")
    with detect() as report:
        for name in view_names:
            response = getattr(views, name)(request)
            if hasattr(response, "render"):
                response.render()
    return [f.to_dict() for f in report.findings]


def _unknown_fields(model: BaseModel, path: str = "$") -> list[str]:
    """Keys the binding does not know (it allows extras; a misspelt key would hide there)."""
    found = [f"{path}.{key}" for key in (model.model_extra or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                found += _unknown_fields(item, f"{path}.{name}[{index}]")
    return found


def validate(log: dict) -> Sarif:
    json.dumps(log)
    model = Sarif.model_validate(log)
    assert _unknown_fields(model) == []
    assert model.version == "2.1.0"
    return model


SCENARIOS = ["forward_fk_bad", "filtered_prefetch_bad", "count_per_row_bad", "template_loop_bad",
             "duplicates_bad", "unused_prefetch_bad", "unindexed_bad"]


def test_sarif_validates_and_has_what_review_tools_read(pizzeria):
    findings = _findings(*SCENARIOS)
    kinds = {f["kind"] for f in findings}
    assert {"n_plus_one", "duplicate", "unused_prefetch"} <= kinds
    log = to_sarif(findings)
    model = validate(log)
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(run["results"]) == len(findings) == len(model.runs[0].results)
    for finding, result in zip(findings, run["results"]):
        assert result["ruleId"] == finding["kind"]
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] == ("warning" if finding["kind"] == "n_plus_one" else "note")
        assert result["message"]["text"]
        for location in result.get("locations", []) + result.get("relatedLocations", []):
            physical = location["physicalLocation"]
            uri = physical["artifactLocation"]["uri"]
            assert not uri.startswith(("/", "file:")) and (Path(settings.BASE_DIR) / uri).is_file(), uri
            assert physical["region"]["startLine"] >= 1


def test_n_plus_one_result_sits_on_the_place_with_the_call_site_and_fix(pizzeria):
    finding = next(f for f in _findings("filtered_prefetch_bad") if f["kind"] == "n_plus_one")
    result = to_sarif([finding])["runs"][0]["results"][0]
    text = result["message"]["text"]
    assert "shop.Order.pizzas" in text and f"{finding['count']} queries" in text
    assert finding["snippets"]["line"] in text

    # The result sits on the place to act (here the line that builds the queryset, the origin);
    # the loop's line is a related location.
    assert finding["place"]["kind"] == "queryset" and finding["place"]["line"] == finding["origin"]["lineno"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "demo/shop/views.py"
    assert location["region"]["startLine"] == finding["place"]["line"]
    assert "act here" in result["locations"][0]["message"]["text"]
    related = result["relatedLocations"][0]["physicalLocation"]
    assert related["region"]["startLine"] == finding["callsite"]["lineno"]

    change = result["fixes"][0]["artifactChanges"][0]
    assert change["artifactLocation"]["uri"] == "demo/shop/views.py"
    origin_line = finding["origin"]["lineno"]
    replaced = {r["deletedRegion"]["startLine"]: r["insertedContent"]["text"] for r in change["replacements"]}
    assert finding["snippets"]["line"] in replaced[origin_line]


def _apply_sarif_fix(text: str, replacements: list[dict]) -> str:
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return offsets[line - 1] + column - 1

    for replacement in sorted(replacements, key=lambda r: -r["deletedRegion"]["startLine"]):
        region = replacement["deletedRegion"]
        start = offset(region["startLine"], region["startColumn"])
        end = offset(region["endLine"], region["endColumn"])
        text = text[:start] + replacement["insertedContent"]["text"] + text[end:]
    return text


@pytest.mark.parametrize("view_name", ["forward_fk_bad", "filtered_prefetch_bad", "count_per_row_bad"])
def test_sarif_fix_gives_the_same_file_as_the_patch(pizzeria, tmp_path, view_name):
    import shutil
    import subprocess

    finding = next(f for f in _findings(view_name) if f["kind"] == "n_plus_one")
    change = to_sarif([finding])["runs"][0]["results"][0]["fixes"][0]["artifactChanges"][0]
    source = Path(settings.BASE_DIR) / change["artifactLocation"]["uri"]
    by_sarif = _apply_sarif_fix(source.read_text(), change["replacements"])

    shutil.copy(source, tmp_path / "views.py")
    patch = finding_patch(finding).replace("demo/shop/views.py", "views.py")
    (tmp_path / "fix.patch").write_text(patch)
    subprocess.run(["git", "apply", "fix.patch"], cwd=tmp_path, check=True)
    assert by_sarif == (tmp_path / "views.py").read_text() != source.read_text()


def test_failed_proof_has_no_fix_and_says_why(pizzeria):
    finding = next(f for f in _findings("forward_fk_bad") if f["kind"] == "n_plus_one")
    finding["proof"] = {"status": "failed", "before": 10, "after": 10, "rows": 10, "detail": "still repeats"}
    finding["note"] = "The fix did not make the count constant."
    result = to_sarif([finding])["runs"][0]["results"][0]
    assert "fixes" not in result
    assert "Fix:" not in result["message"]["text"]
    validate(to_sarif([finding]))


def test_fingerprint_is_stable_across_runs(pizzeria):
    first = to_sarif(_findings("forward_fk_bad"))["runs"][0]["results"][0]["partialFingerprints"]
    second = to_sarif(_findings("forward_fk_bad"))["runs"][0]["results"][0]["partialFingerprints"]
    assert first == second


def test_partial_fingerprints_are_the_findings_fingerprints_and_ignore_line_moves(pizzeria):
    findings = _findings("forward_fk_bad", "m2m_bad")
    results = to_sarif(findings)["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in results] == [{"ddtPrefetchPanel/v2": f["fingerprint"]} for f in findings]
    moved = [{**f, "callsite": {**f["callsite"], "lineno": f["callsite"]["lineno"] + 40}} for f in findings]
    assert [r["partialFingerprints"] for r in to_sarif(moved)["runs"][0]["results"]] == \
        [r["partialFingerprints"] for r in results]
    marked = [{**findings[0], "baseline_state": "new"}, {**findings[1], "baseline_state": "known"}]
    log = to_sarif(marked)
    assert [r["baselineState"] for r in log["runs"][0]["results"]] == ["new", "unchanged"]
    # SARIF 2.1.0's result.baselineState (new, unchanged, updated, absent); sarif-pydantic's
    # Result has no field for it, so it is its only unknown key.
    assert _unknown_fields(Sarif.model_validate(log)) == [f"$.runs[0].results[{i}].baselineState" for i in (0, 1)]


def test_empty_log_is_valid():
    log = to_sarif([])
    validate(log)
    assert log["runs"][0]["results"] == []


def _two_relations_of_one_root():
    from shop.models import Order

    orders = Order.objects.order_by("pk")
    return [(order.customer.name, len(order.pizzas.all())) for order in orders]


def test_combined_fix_of_one_root_is_the_sarif_fix(pizzeria):
    with detect() as report:
        _two_relations_of_one_root()
    data = report.to_dict()
    log = to_sarif(data["findings"], fixes=data["fixes"])
    validate(log)
    combined = data["fixes"][0]["line"]
    assert combined.endswith('.select_related("customer").prefetch_related("pizzas")')
    for result in log["runs"][0]["results"]:
        assert combined in result["message"]["text"]
        [change] = result["fixes"][0]["artifactChanges"]
        assert change["artifactLocation"]["uri"] == "tests/test_sarif.py"
        assert any(combined in r["insertedContent"]["text"] for r in change["replacements"])
