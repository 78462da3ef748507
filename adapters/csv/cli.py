"""``fit csv accept SOURCE``: use a CSV source's files as they are, though shorter than before.

Added to ``fit`` through the ``fit_register_commands`` hook of the csv plugin.
"""

from __future__ import annotations

import datetime as dt
import json

import click

from fit_core.clitools import App, fit_errors
from fit_core.config import adapter_options
from fit_core.errors import ConfigError
from fit_core.store import Store

from .adapter import ACCEPTED, CsvAdapter, parse_bookmark
from .options import CsvOptions
from .reader import fingerprint


@click.group("csv")
def csv_group() -> None:
    """CSV sources: the input files fit sync reads."""


@csv_group.command("accept", short_help="Use the files as they are now, though shorter.")
@click.argument("source")
@click.pass_context
@fit_errors
def accept(ctx: click.Context, source: str) -> None:
    """Accept SOURCE's input files exactly as they are now.

    fit sync refuses a file that holds far fewer rows than when it was last read (more than
    the source's max_shrink, 0.25 by default), and a file that disappeared: such a file looks
    cut short or lost, and reading it would delete the records it no longer holds. Once
    accepted, the next sync reads the files and removes the records none of them holds. A
    file that changes again before that sync is compared afresh.
    """
    config = App.of(ctx).config
    src = config.source(source)
    if src.adapter != CsvAdapter.name:
        raise ConfigError(f"source {source!r} is not a csv source (adapter {src.adapter!r})")
    options = CsvOptions.load(adapter_options(src, CsvAdapter), source)
    root = options.path
    if root.is_dir():
        scores = options.scores_path.resolve()
        paths = [
            p
            for p in sorted(root.iterdir(), key=lambda p: p.name)
            if not p.name.startswith(".")
            and p.suffix.lower() == ".csv"
            and p.is_file()
            and p.resolve() != scores
        ]
    else:
        paths = [root] if root.exists() else []
    files = {p.name: fingerprint(p)["sha256"] for p in paths}
    store = Store.open(config.store_path)
    try:
        known = parse_bookmark(store.bookmark(source))
        gone = sorted(set(known) - set(files))
        data = {
            "accepted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        store.set_state_value(source, ACCEPTED, json.dumps(data, sort_keys=True))
    finally:
        store.close()
    click.echo(f"accepted {len(files)} file(s) of source {source} as they are")
    for name in gone:
        click.echo(f"  {name}: accepted as gone")
    click.echo("the next `fit sync` reads them and removes what they no longer hold", err=True)
