"""Adapters whose library is an optional extra: fit works without it and names what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openpyxl import Workbook

# runs `fit` with google-auth and openpyxl hidden, as in an install without those extras
HIDDEN = """
import sys

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"google", "openpyxl"}:
            raise ImportError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Hide())
for name in [m for m in sys.modules if m.split(".")[0] in {"google", "openpyxl"}]:
    del sys.modules[name]
sys.argv = ["fit", *sys.argv[1:]]
from fit_cli.main import main
main()
"""


def fit_without_extras(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIT_")}
    env["FIT_GFORMS_SERVICE_ACCOUNT"] = '{"type": "service_account"}'
    env["FIT_SP_NAME_KEY"] = "a-key-for-name-hashes-made-for-this-test"
    return subprocess.run(
        [sys.executable, "-c", HIDDEN, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_without_the_google_extra_plugins_load_and_a_google_source_names_the_extra(
    tmp_path: Path,
) -> None:
    plugins = fit_without_extras("plugins", "--json", cwd=tmp_path)
    assert plugins.returncode == 0, plugins.stderr
    assert "google_forms" in plugins.stdout and "warning" not in plugins.stderr.lower()
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        '[store]\npath = "fit.sqlite3"\n'
        '[sources.gforms]\nadapter = "google_forms"\nspreadsheet_id = "book0000001"\n'
        '[[sources.gforms.forms]]\nform_id = "1BothFormIdFromTheEditorUrl012345678901234"\n'
        'client_id = { id = "14446fc5" }\n'
        'measures.ORS = { q1 = "1de1b3f7", q2 = "6d282acc", q3 = "8bfbb455", q4 = "fc332a97" }\n',
        encoding="utf-8",
    )
    check = fit_without_extras("--config", str(cfg), "check", cwd=tmp_path)
    assert check.returncode == 3, check.stdout + check.stderr
    assert "fit-sync[google]" in check.stdout + check.stderr
    assert "Traceback" not in check.stderr


def test_without_the_simplepractice_extra_an_xlsx_export_names_the_extra(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Date of Service", "Client", "Clinician", "Status"])
    book.save(exports / "appointment_status.xlsx")
    cfg = tmp_path / "fit.toml"
    cfg.write_text(
        '[store]\npath = "fit.sqlite3"\n[sources.sp]\nadapter = "simplepractice"\n'
        'path = "exports"\nnamespace_target = "lab"\n',
        encoding="utf-8",
    )
    res = fit_without_extras("--config", str(cfg), "sync", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert "fit-sync[simplepractice]" in out, out
    assert "Traceback" not in res.stderr
