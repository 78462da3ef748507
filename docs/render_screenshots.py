#!/usr/bin/env python3
"""Render the README's report screenshots (docs/img/*.png) from the seeded synthetic clinic.

Reproducible: the clinic comes from :func:`fit_core.synthetic.generate_clinic` with a fixed
seed, plus the hand-made 20-session deteriorating client of :mod:`fit_core.demo_cases` and a
clinician who joined recently (a tiny group), "today" is a fixed date inside the data, and
everything goes through the pure Python API (validate → score with the built-in rules → fit a
clinic trajectory model → report pages), so the same code gives the same pictures. Pictures:
the long, deteriorating episode, a child rated by a parent too, and the clinic report, each at
desktop and phone width. Needs the reports extra and Chromium::

    pip install -e '.[reports]' && python docs/render_screenshots.py [--out docs/img]

Synthetic data only: no real people.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from fit_core.demo_cases import deteriorating_client
from fit_core.episodes import episodes_of, is_ended, latest_views, summarize, trajectory_series
from fit_core.measures import BUILTIN_MEASURES
from fit_core.models import Administration, Record, Scored
from fit_core.reports import browser
from fit_core.reports.caseload_data import CaseloadPage, caseload_pages, client_row
from fit_core.reports.caseload_html import render_caseload
from fit_core.reports.client_data import ClientPage, client_pages, flags_from_scored
from fit_core.reports.client_view import RULE_TITLES
from fit_core.reports.clinic_data import clinic_data
from fit_core.reports.deps import require_reports
from fit_core.reports.html import render_client, render_clinic
from fit_core.rules.builtin import BUILTIN_RULES
from fit_core.scoring import Scorer, group_by_client
from fit_core.settings import Settings
from fit_core.synthetic import DEFAULT_START, generate_clinic
from fit_core.trajectories import ModelSet, fit_clinic_model
from fit_core.validation import Validator

SEED = 7
N_CLIENTS = 1500
AS_OF = DEFAULT_START + dt.timedelta(days=430)  # inside the data: some episodes still open
MEASURES = {m.key: m for m in BUILTIN_MEASURES}
PHONE = (390, 844, 2.0)  # CSS pixels and device scale (an iPhone 12-14 sized viewport)
PHONE_TALL = (390, 1500, 2.0)  # the top of a page on a phone: tiles and the ORS chart
DESKTOP = (1280, 900, 1.0)
LONG_CLIENT = "C900001"


def synthetic_rows() -> list[dict[str, str]]:
    """The main clinic plus a clinician who joined recently (a small group, marked as such)."""
    rows = list(generate_clinic(N_CLIENTS, seed=SEED))
    late = DEFAULT_START + dt.timedelta(days=300)
    for row in generate_clinic(6, seed=SEED + 1, start=late, first_client=N_CLIENTS + 1):
        row["clinician_id"] = "T13"
        rows.append(row)
    # the long, hard episode: 20 weekly sessions ending four days before "today"
    rows.extend(deteriorating_client(AS_OF - dt.timedelta(weeks=19, days=4), client_id=LONG_CLIENT))
    return rows


def administrations(rows: Iterable[dict[str, str]]) -> list[Administration]:
    validator = Validator(MEASURES, "UTC", source="demo")
    out = []
    for i, row in enumerate(rows):
        result = validator.validate(Record(source_key=row.get("source_key") or str(i), data=row))
        if isinstance(result, Administration):
            out.append(result)
    return out


def score_all(
    admins: Sequence[Administration], settings: Settings, model: object | None
) -> list[list[Scored]]:
    scorer = Scorer(MEASURES, settings, BUILTIN_RULES, model)  # type: ignore[arg-type]
    return [list(scorer.score(group).scored) for group in group_by_client(admins).values()]


def fit_model(clients: Sequence[Sequence[Scored]], settings: Settings) -> object:
    """One model per measure, as `fit trajectories fit --measure ORS|CORS` keeps them: the
    adults' ORS (n >= 30 per session) and the children's CORS (fewer children: n >= 15)."""
    models = []
    for measure, min_n in (("ORS", 30), ("CORS", 15)):
        series = []
        for scored in clients:
            for view in episodes_of(scored):
                if is_ended(view, AS_OF, settings):
                    s = trajectory_series(view, MEASURES, measure)
                    if s is not None:
                        series.append(s)
        model = fit_clinic_model(series, max_session=10, min_n=min_n, measure=measure)
        models.append((len(models) + 1, "clinic", model.to_dict()))
    return ModelSet.from_rows(models)


def pick(clients: Sequence[Sequence[Scored]], *, child: bool) -> list[Scored]:
    """A deterministic, instructive client: the first (by id) with a collateral rater (child),
    or an open adult episode of 7-10 sessions with not-on-track and alliance flags."""
    for scored in sorted(clients, key=lambda s: s[0].admin.client_id):
        raters = {s.admin.rater for s in scored}
        rules = {f.rule_id for s in scored for f in s.flags}
        sessions = max(s.score.session for s in scored)
        if child:
            ok = "parent" in raters and sessions >= 6 and "srs.below_cutoff" in rules
        else:
            last = max(s.admin.local_date for s in scored)
            ok = (
                raters == {"client"}
                and all(s.admin.measure in ("ORS", "SRS") for s in scored)
                and 7 <= sessions <= 10
                and {"ors.not_on_track", "srs.drop"} <= rules
                and (AS_OF - last).days <= 14
            )
        if ok:
            return list(scored)
    raise LookupError("no client fits; change the seed")


def page_of(
    scored: Sequence[Scored], model: object, settings: Settings, *, srs_items: bool = False
) -> ClientPage:
    pages = client_pages(scored, MEASURES, settings, model=model, srs_items=srs_items)  # type: ignore[arg-type]
    return pages[-1]


def long_client(clients: Sequence[Sequence[Scored]]) -> list[Scored]:
    return next(list(s) for s in clients if s[0].admin.client_id == LONG_CLIENT)


def caseload(
    clients: Sequence[Sequence[Scored]], model: object, settings: Settings
) -> CaseloadPage:
    """The caseload page of the clinician whose active clients show every attention group."""
    rows = []
    for scored in clients:
        latest = [v for v, is_latest in latest_views(episodes_of(scored)) if is_latest]
        if all(is_ended(v, AS_OF, settings, latest=True) for v in latest):
            continue
        page = client_pages(scored, MEASURES, settings, model=model, episode=latest[0].episode_id)
        first = {(f.source, f.source_key, f.rule_id): f.first_session
                 for f in flags_from_scored(scored, MEASURES)}  # fmt: skip
        alerts = [
            {"id": 1000 + len(rows) * 10 + i, "rule_id": f.rule_id, "severity": f.severity,
             "message": f.message, "state": f.state, "session": s.score.session,
             "first_session": first.get((s.admin.source, s.admin.source_key, f.rule_id)),
             "date": s.admin.local_date.isoformat()}
            for i, (s, f) in enumerate((s, f) for s in scored for f in s.flags if f.state == "open")
            if s.score.episode_id == page[0].episode_id
        ]  # fmt: skip
        client = scored[0].admin.client_id
        rows.append(
            client_row(
                page[0],
                alerts,
                namespace="demo",
                client_id=client,
                clinician_id=page[0].clinician_id,
                as_of=AS_OF,
                stale_days=21,
                titles=RULE_TITLES,
                href=f"clients/{client}.html",
            )
        )
    pages = caseload_pages(rows, AS_OF, 21)
    full = [p for p in pages if all(p.counts.values()) and 8 <= len(p.clients) <= 24]
    return min(full or pages, key=lambda p: (-min(p.counts.values()), len(p.clients)))


def shoot(html: str, out: Path, size: tuple[int, int, float], *, full: bool = False) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(html, encoding="utf-8")
        width, height, scale = size
        browser.screenshot(src, out, width=width, height=None if full else height, scale=scale)
    print(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    args = parser.parse_args(argv)
    require_reports()
    args.out.mkdir(parents=True, exist_ok=True)

    settings = Settings(as_of=AS_OF)
    admins = administrations(synthetic_rows())
    model = fit_model(score_all(admins, settings, None), settings)
    clients = score_all(admins, settings, model)

    long = page_of(long_client(clients), model, settings, srs_items=True)
    html = render_client(long, generated=AS_OF)
    shoot(html, args.out / "client-desktop.png", DESKTOP)
    shoot(html, args.out / "client-phone.png", PHONE_TALL)
    shoot(html, args.out / "client-desktop-full.png", DESKTOP, full=True)

    adult = page_of(pick(clients, child=False), model, settings)
    shoot(render_client(adult, generated=AS_OF), args.out / "client-short.png", DESKTOP)

    child = page_of(pick(clients, child=True), model, settings)
    html = render_client(child, generated=AS_OF)
    shoot(html, args.out / "client-collateral.png", DESKTOP, full=True)
    shoot(html, args.out / "client-collateral-phone.png", PHONE_TALL)

    summaries = [
        s
        for scored in clients
        for view in episodes_of(scored)
        if (s := summarize(view, MEASURES, settings, AS_OF)) is not None
    ]
    clinic = render_clinic(
        clinic_data(summaries, by="clinician", as_of=AS_OF, min_n=10, measures=MEASURES),
        generated=AS_OF,
    )
    shoot(clinic, args.out / "clinic-desktop.png", DESKTOP, full=True)
    shoot(clinic, args.out / "clinic-phone.png", (390, 2600, 2.0))

    so_far = score_all([a for a in admins if a.local_date <= AS_OF], settings, model)
    load = render_caseload(caseload(so_far, model, settings), generated=AS_OF)
    shoot(load, args.out / "caseload-desktop.png", DESKTOP)
    shoot(load, args.out / "caseload-phone.png", PHONE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
