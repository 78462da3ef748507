"""`fit redcap inspect|template` and the Data Entry Trigger receiver behind `fit serve`."""

from __future__ import annotations

import csv
import io
import os
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from fakes import redcap_fake as rf
from fakes.redcap_fake import SESSION, TOKEN, RedcapFake, clinic_project, source_options

from fit_adapters.redcap.commands import make_runner
from fit_adapters.redcap.det import DetServer, DetSource, SyncQueue, route
from fit_adapters.redcap.options import RedcapOptionsSchema
from fit_cli.main import cli
from fit_core.measures import BUILTIN_MEASURES

redcap_fake = rf.redcap_fake  # the fixture
SOURCE = "clinic_redcap"


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_config(tmp_path: Path, options: dict[str, Any]) -> Path:
    """A config file with one REDCap source (nested tables written out by hand)."""
    lines = [
        f'[store]\npath = "{tmp_path / "fit.sqlite3"}"',
        '[sync]\ntimezone = "UTC"',
        f"[sources.{SOURCE}]",
        'adapter = "redcap"',
    ]
    tables: list[str] = []
    for key, value in options.items():
        if key == "instruments":
            for name, spec in value.items():
                tables.append(f"[sources.{SOURCE}.instruments.{name}]")
                tables += [f"{k} = {toml_value(v)}" for k, v in spec.items()]
        elif isinstance(value, dict):
            tables.append(f"[sources.{SOURCE}.{key}]")
            tables += [f"{k} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key} = {toml_value(value)}")
    path = tmp_path / "fit.toml"
    path.write_text("\n".join(lines + tables) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def configured(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> tuple[RedcapFake, Path]:
    fake = redcap_fake(clinic_project(20, seed=9))
    monkeypatch.setenv("FIT_CLINIC_REDCAP_TOKEN", TOKEN)
    return fake, write_config(tmp_path, source_options(fake))


def fit(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


# --- inspect ------------------------------------------------------------------------------------


def test_inspect_proposes_a_mapping_as_toml(configured: tuple[RedcapFake, Path]) -> None:
    fake, config = configured
    res = fit(config, "redcap", "inspect", SOURCE)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "record id field: record_id" in out and "scoring instrument fit_scores: found" in out
    assert "session_arm_1 (repeating)" in out and "followup_arm_1 (repeating event)" in out
    proposed = tomllib.loads(out)["sources"][SOURCE]
    assert proposed["instruments"]["ors"] == {
        "measure": "ORS",
        "items": ["ors_1", "ors_2", "ors_3", "ors_4"],
        "scale": "percent",
    }
    assert proposed["instruments"]["srs"]["measure"] == "SRS"
    assert proposed["fields"] == {"clinician_id": "clinician", "age": "age"}
    RedcapOptionsSchema().load({"url": fake.url, **proposed})  # a valid config
    assert TOKEN not in res.output


def test_inspect_needs_a_redcap_source(tmp_path: Path) -> None:
    config = tmp_path / "fit.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "s.db"}"\n[sources.files]\nadapter = "csv"\n'
        f'path = "{tmp_path}"\nscores_path = "{tmp_path / "o.csv"}"\n'
    )
    res = fit(config, "redcap", "inspect", "files")
    assert res.exit_code == 3 and "not redcap" in res.output


# --- template -----------------------------------------------------------------------------------


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_template_prints_the_scoring_instrument_and_neutral_surveys(
    configured: tuple[RedcapFake, Path],
) -> None:
    fake, config = configured
    before = len(fake.hits)
    res = fit(config, "redcap", "template", SOURCE, "--surveys")
    assert res.exit_code == 0, res.output
    assert len(fake.hits) == before  # no request without --merge
    rows = parse(res.stdout)
    names = [r["Variable / Field Name"] for r in rows]
    assert {"fit_ors_total", "fit_ors_status", "fit_srs_message", "ors_1", "srs_4"} <= set(names)
    scores = [r for r in rows if r["Form Name"] == "fit_scores"]
    assert all(
        r["Field Annotation"] == "@READONLY" for r in scores if r["Field Type"] != "descriptive"
    )
    allowed = {label for m in BUILTIN_MEASURES for label in m.item_labels}
    items = [r for r in rows if r["Form Name"] in ("ors", "srs") and r["Field Type"] == "slider"]
    assert len(items) == 8 and all(r["Field Label"] in allowed for r in items)
    notes = " ".join(r["Field Label"] for r in rows if r["Field Type"] == "descriptive")
    assert "© 2000 Scott D. Miller and Barry L. Duncan" in notes and "licence" in notes


def test_template_merge_appends_to_the_current_dictionary(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = redcap_fake(clinic_project(3, scoring=False))
    monkeypatch.setenv("FIT_CLINIC_REDCAP_TOKEN", TOKEN)
    config = write_config(tmp_path, source_options(fake))
    res = fit(config, "redcap", "template", SOURCE, "--merge", "--surveys")
    assert res.exit_code == 0, res.output
    names = [r["Variable / Field Name"] for r in parse(res.stdout)]
    assert names[0] == "record_id" and len(names) == len(set(names))
    assert names.index("fit_ors_total") > names.index("srs_4")  # existing rows first


# --- the Data Entry Trigger ---------------------------------------------------------------------

SERVED = [DetSource.of(SOURCE, 4242, "https://redcap.example.org/api/", ["ors", "srs"])]
NOTICE = {
    "redcap_url": "https://redcap.example.org/",
    "project_url": "https://redcap.example.org/redcap_v14.5.0/index.php?pid=4242",
    "project_id": "4242",
    "username": "someone",
    "record": "1003",
    "instrument": "ors",
    "ors_complete": "2",
}


def test_route_checks_project_host_and_instrument() -> None:
    assert route(NOTICE, SERVED) == ([SOURCE], "")
    assert route({**NOTICE, "project_id": "99"}, SERVED)[0] == []
    assert route({**NOTICE, "redcap_url": "https://evil.example.net/"}, SERVED)[0] == []
    assert (
        route({**NOTICE, "instrument": "fit_scores"}, SERVED)[1] == "instrument fit_scores "
        "is not mapped"
    )
    assert route({k: v for k, v in NOTICE.items() if k != "record"}, SERVED)[0] == []


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def submit(self, source: str, record: str) -> None:
        self.calls.append((source, record))


def send(url: str, data: dict[str, str] | None = None, method: str = "POST") -> int:
    body = urlencode(data or {}).encode() if method == "POST" else None
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except HTTPError as exc:
        return exc.code


def test_receiver_checks_path_method_and_answers_at_once() -> None:
    queue = Recorder()
    server = DetServer(SERVED, queue, port=0, path="/det", secret="s3cr3t-path")  # type: ignore[arg-type]
    server.start()
    try:
        host, port = server.address
        base = f"http://{host}:{port}"
        assert send(f"{base}/det", NOTICE) == 404  # no secret
        assert send(f"{base}/det/wrong", NOTICE) == 404
        assert send(f"{base}/det/s3cr3t-path", method="GET") == 405
        assert send(f"{base}/det/s3cr3t-path", {**NOTICE, "project_id": "1"}) == 200
        assert queue.calls == []  # another project: ignored
        assert send(f"{base}/det/s3cr3t-path", NOTICE) == 200
        assert queue.calls == [(SOURCE, "1003")]  # queued before the answer
    finally:
        server.stop()


def test_notice_syncs_only_that_record_through_the_api(
    configured: tuple[RedcapFake, Path],
) -> None:
    fake, config = configured
    run = make_runner(config)
    run(SOURCE, None)  # the scheduled sync has run once
    project = fake.project
    project.put(
        "1003",
        {
            "ors_1": 20,
            "ors_2": 30,
            "ors_3": 40,
            "ors_4": 50,
            "ors_complete": 2,
            "ors_timestamp": "2024-05-02 10:00:00",
        },
        event=SESSION,
        repeat_instrument="ors",
        instance=7,
        modified=fake.now_local(),
    )
    mark = len(fake.hits)
    queue = SyncQueue(run, debounce=0.05).start()
    served = [DetSource.of(SOURCE, project.project_id, fake.url, ["ors", "srs"])]
    server = DetServer(served, queue, port=0, path="/").start()
    try:
        host, port = server.address
        notice = {
            **NOTICE,
            "redcap_url": f"http://127.0.0.1:{fake.port}/",
            "project_url": "",
            "project_id": str(project.project_id),
        }
        assert send(f"http://{host}:{port}/", notice) == 200
        assert queue.wait_idle(20)
    finally:
        server.stop()
        queue.stop()
    assert (
        project.value(
            "1003", "fit_ors_total", event=SESSION, repeat_instrument="fit_scores", instance=7
        )
        == "14.0"
    )
    exports = [h for h in fake.hits[mark:] if h.action == "export" and h.content == "record"]
    # the record, then its scoring rows read back before the write: no query of changed ids
    assert [h.records for h in exports] == [1, 1] and all(h.since is None for h in exports)


# --- errors reach the user once, with their exit code -----------------------------------------


def test_a_source_error_is_printed_once(
    tmp_path: Path, redcap_fake: Callable[..., RedcapFake], monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    fake = redcap_fake(clinic_project(3), token="F" * 32)
    config = write_config(tmp_path, source_options(fake))
    env = {**os.environ, "FIT_CLINIC_REDCAP_TOKEN": TOKEN}
    res = subprocess.run(
        [sys.executable, "-m", "fit_cli", "--config", str(config), "sync"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 3
    assert res.stderr.count("refused export project info (HTTP 403)") == 1, res.stderr
    assert res.stderr.count("hint:") == 1


def test_plain_http_to_another_host_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIT_CLINIC_REDCAP_TOKEN", TOKEN)
    options = {
        "url": "http://redcap.example.org/api/",
        "instruments": {"ors": {"measure": "ORS", "items": ["a", "b", "c", "d"]}},
    }
    config = write_config(tmp_path, options)
    res = fit(config, "check", "--source", SOURCE)
    assert res.exit_code == 3
    assert "unencrypted" in res.output and "allow_http" in res.output
    res = fit(config, "sync")
    assert res.exit_code == 3 and "unencrypted" in res.output
