"""`fit google inspect`: lists a form's questions and proposes a mapping that works as is."""

from __future__ import annotations

import json
import random
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import fit_adapters.google_forms as plugin
from fit_adapters.google_forms.adapter import GoogleFormsAdapter
from fit_adapters.google_forms.cli import google
from fit_adapters.google_forms.client import Timing
from fit_core.testing import make_context

sys.path.insert(0, str(Path(__file__).parent))
from fakes.google_fake import FakeClock, GoogleFake, measure_form, service_account_json

EMAIL = "cli@clinic-test.iam.gserviceaccount.com"


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    with GoogleFake.running() as f:
        doc, _layout = measure_form("bothForm0001", ["ORS", "SRS"], title="Weekly check-in")
        f.add_form("bothForm0001", doc)
        f.add_spreadsheet("book0000001")
        yield f


def invoke(cfg: Path, args: list[str]) -> Any:
    """``fit --config CFG google ARGS`` (the group alone: other plugins cannot interfere)."""
    return CliRunner().invoke(google, args, obj={"config_path": cfg})


def test_the_plugin_registers_the_google_command() -> None:
    group = click.Group("fit")
    plugin.fit_register_commands(cli=group)
    assert group.commands["google"] is google and "inspect" in google.commands


def write_config(tmp_path: Path, fake: GoogleFake, forms: str = "") -> Path:
    ends = "\n".join(f'{k} = "{v}"' for k, v in fake.endpoints().items())
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"\n'
        f'[sources.gforms]\nadapter = "google_forms"\nspreadsheet_id = "book0000001"\n{ends}\n'
        + forms,
        encoding="utf-8",
    )
    return cfg


def test_inspect_lists_questions_and_proposes_a_working_mapping(
    tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
    cfg = write_config(tmp_path, fake)  # no forms mapped yet: inspect still works
    res = invoke(cfg, ["inspect", "gforms", "--form", "bothForm0001"])
    assert res.exit_code == 0, res.output
    form = fake.forms["bothForm0001"].doc
    qids = [
        i["questionItem"]["question"]["questionId"] for i in form["items"] if "questionItem" in i
    ]
    assert all(q in res.stdout for q in qids)
    assert "scale" in res.stdout and "range:0:10" in res.stdout and "Client code" in res.stdout
    proposal = res.stdout[res.stdout.index("# Weekly check-in") :]
    parsed = tomllib.loads(proposal)["sources"]["gforms"]["forms"]
    assert set(parsed[0]["measures"]) == {"ORS", "SRS"}
    assert fake.writes() == [] and fake.count("forms.responses.list") == 0

    # the proposal, pasted under the source, is a config the adapter accepts and resolves
    options = {**fake.endpoints(), "spreadsheet_id": "book0000001", "forms": parsed}
    clock = FakeClock()
    ctx = make_context(
        "gforms",
        options,
        tmp_path,
        adapter=GoogleFormsAdapter,
        secrets={"service_account": service_account_json(EMAIL)},
    )
    adapter = GoogleFormsAdapter(ctx, timing=Timing(clock.clock, clock.sleep, random.Random(1)))
    adapter.check()
    (form_map,) = adapter.google.forms
    resolved = adapter.resolved(form_map)
    assert [m.measure for m in resolved.measures] == ["ORS", "SRS"]
    assert resolved.clinician is not None
    adapter.close()


def test_inspect_json_uses_the_configured_forms(
    tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
    cfg = write_config(tmp_path, fake, '[[sources.gforms.forms]]\nform_id = "bothForm0001"\n')
    res = invoke(cfg, ["inspect", "gforms", "--json"])
    assert res.exit_code == 0, res.output
    (entry,) = json.loads(res.stdout)
    assert entry["form_id"] == "bothForm0001" and entry["title"] == "Weekly check-in"
    scales = [q for q in entry["questions"] if q["type"] == "scale"]
    assert len(scales) == 8 and {(q["low"], q["high"]) for q in scales} == {(0, 10)}


def test_inspect_errors_say_what_to_do(
    tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path, fake)
    res = invoke(cfg, ["inspect", "gforms", "--form", "bothForm0001"])
    assert res.exit_code == 3 and "fit keys set gforms service_account" in res.stderr
    monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
    fake.denied.add("bothForm0001")
    res = invoke(cfg, ["inspect", "gforms", "--form", "bothForm0001"])
    assert res.exit_code == 3 and EMAIL in res.stderr
    res = invoke(cfg, ["inspect", "gforms"])
    assert res.exit_code == 3 and "--form FORM_ID" in res.stderr


def test_inspect_proposes_ors_for_an_ors_form_titled_session(
    tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
    doc, _layout = measure_form("orsForm00001", ["ORS"], title="Session feedback")
    scales = [i for i in doc["items"] if "scaleQuestion" in str(i)]
    for n, item in enumerate(scales, start=1):  # the clinic titled its questions "ORS 1 — …"
        item["title"] = f"ORS {n} — {item['title']}"
    for item in doc["items"]:
        if "pageBreakItem" in item:
            item["title"] = "Part two"  # no measure named in the section
    fake.add_form("orsForm00001", doc)
    res = invoke(write_config(tmp_path, fake), ["inspect", "gforms", "--form", "orsForm00001"])
    assert res.exit_code == 0, res.output
    proposal = res.stdout[res.stdout.index("# Session feedback") :]
    (form,) = tomllib.loads(proposal)["sources"]["gforms"]["forms"]
    assert list(form["measures"]) == ["ORS"]
    header = next(line for line in proposal.splitlines() if "measures.ORS]" in line)
    assert "# check: measure from the question titles" in header
    for key in ("client_id", "clinician", "administered_at"):
        line = next(x for x in proposal.splitlines() if x.startswith(f"{key} ="))
        assert "# check" in line, line


def test_inspect_refuses_when_the_questions_and_the_section_disagree(
    tmp_path: Path, fake: GoogleFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_GFORMS_SERVICE_ACCOUNT", service_account_json(EMAIL))
    doc, _layout = measure_form("mixForm00001", ["SRS"], title="Weekly")  # section "SRS section"
    for item in doc["items"]:
        if "scaleQuestion" in item.get("questionItem", {}).get("question", {}):
            item["title"] = "ORS item"
    fake.add_form("mixForm00001", doc)
    res = invoke(write_config(tmp_path, fake), ["inspect", "gforms", "--form", "mixForm00001"])
    assert res.exit_code == 0, res.output
    assert "# check: not proposed: the evidence disagrees" in res.stdout
    proposal = res.stdout[res.stdout.index("# Weekly") :]
    assert "measures" not in tomllib.loads(proposal)["sources"]["gforms"]["forms"][0]
