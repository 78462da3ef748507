"""Every `fit` command line that README.md, docs/*.md and contrib/README.md show runs against
the demo clinic.

The command lines are read from the documents themselves: lines of shell code blocks (and the
cron and systemd `ExecStart=` lines that call `fit`) and inline code spans in prose that start
with `fit` (a synopsis such as `fit stats [--by clinician|site] [--json|--csv]` runs in its
shortest and its longest forms, with each alternative). Placeholders (`SOURCE`, `ID`, `FILE`,
`DATE`, ...) and the documents' example values (`C000387`, `links.csv`, `~/today`) get real
values of a demo store made once with `fit demo --keep`. Each command runs in-process on a fresh
copy of that store, so the commands that change it (erase, purge, keys, encrypt, ...) run in any
order, and with what the documents set up before it: a retention period for `fit purge`, the
store key for `fit store encrypt`, a synthetic SimplePractice export for `fit clients`, and
loopback fakes (tests/fakes/) for the REDCap project of `fit redcap`, the Google Form of
`fit google` and the mail and webhook servers of `fit notify`. Prose that only names a command
or an option (`fit client erase`, `fit serve --path`) is looked up instead of run.

A documented command line must parse (never exit 2, USAGE), never crash (exit 6 or a
traceback), and exit 0, or, where the demo cannot give what it needs (`NEEDS_MORE`: a server
that runs until stopped, more closed episodes), stop with the clean error that says so. A
failure names the document, the line and the command line as shown.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from fakes import google_fake as gf
from fakes import redcap_fake as rf
from fakes import smtp_fake as sf
from fakes import webhook_fake as wf

import fit_cli.main  # noqa: F401  (registers the built-in commands)
from fit_cli.main import cli

smtp_fake = sf.smtp_fake  # the loopback servers' fixtures (requested by name in `run`)
webhook_fake = wf.webhook_fake
redcap_fake = rf.redcap_fake

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "contrib" / "README.md"]

#: code blocks read as shell lines; other languages (toml, python, json, ...) are not
SHELL_BLOCKS = frozenset({"", "sh", "bash", "shell", "console", "text"})
CRON_BLOCKS = frozenset({"cron", "crontab"})
UNIT_BLOCKS = frozenset({"ini", "systemd"})

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
#: the word after `fit` in a command line: a sub-command or an option (output lines such as
#: "fit demo: synthetic clinic ..." do not match)
_COMMAND_WORD = re.compile(r"^(-{1,2}[a-z]|[a-z][a-z0-9_-]*(\|[a-z][a-z0-9_-]*)*$)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Shown:
    """One `fit` command line as a document shows it."""

    doc: str  # "README.md", "docs/privacy.md"
    line: int  # 1-based line where it starts
    text: str  # the line (or span) as shown, continuations joined
    words: tuple[str, ...]  # its words after the `fit` executable, shell quoting removed
    stdin: str | None  # the command piped into it (`openssl rand -hex 32 | fit ...`)
    inline: bool  # an inline code span in prose (may be a synopsis or a command's name)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _cut_comment(line: str) -> str:
    """The line without a trailing `# comment`: a `#` outside quotes after a blank or at the
    start (`'#7'` and `a#b` are arguments, as in a shell)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _split_unquoted(line: str, separators: tuple[str, ...]) -> list[str]:
    """Split a shell line on operators outside quotes and outside a synopsis's `[...]` (where
    `[A | B]` means A or B)."""
    parts: list[str] = []
    quote: str | None = None
    depth = 0
    start = i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[]":
            depth += 1 if ch == "[" else -1
        elif depth <= 0:
            sep = next((s for s in separators if line.startswith(s, i)), None)
            if sep is not None:
                parts.append(line[start:i])
                i += len(sep)
                start = i
                continue
        i += 1
    parts.append(line[start:])
    return [p.strip() for p in parts]


def _fit_words(stage: str) -> list[str] | None:
    """The words after the `fit` executable of one pipeline stage, or None if it runs no `fit`.

    Leading `sudo [-u USER]`, `env` and `NAME=value` assignments are skipped; the executable is
    `fit`, a path ending in `/fit`, or `python -m fit_cli`. Redirections are dropped.
    """
    try:
        words = shlex.split(stage)
    except ValueError:
        return None
    while words:
        if _ASSIGNMENT.match(words[0]) or words[0] == "env":
            words = words[1:]
        elif words[0] == "sudo":
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-u", "-g") else words[1:]
        elif words[0] == "flock":  # flock [-n] [-w SECONDS] LOCKFILE COMMAND
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] in ("-w", "-E") else words[1:]
            words = words[1:]
        else:
            break
    if not words:
        return None
    exe = words[0]
    if exe == "fit" or exe.endswith("/fit"):
        rest = words[1:]
    elif re.fullmatch(r"(.*/)?python3?(\.\d+)?", exe) and words[1:3] == ["-m", "fit_cli"]:
        rest = words[3:]
    else:
        return None
    kept: list[str] = []
    skip = False
    for word in rest:
        if skip:
            skip = False
        elif word in (">", ">>", "<", "2>", "2>&1", "&>"):
            skip = word != "2>&1"
        elif re.match(r"^(\d?>>?|<)\S", word) and not re.fullmatch(r"<[\w ]+>", word):
            pass
        else:
            kept.append(word)
    if not kept or not _COMMAND_WORD.match(kept[0]):
        return None
    return kept


def commands_in(line: str) -> list[tuple[list[str], str | None]]:
    """The `fit` commands of one shell line, each with what is piped into it."""
    found: list[tuple[list[str], str | None]] = []
    line = _cut_comment(line)
    if line.startswith("$ "):
        line = line[2:]
    for sequence in _split_unquoted(line, ("&&", "||", ";")):
        stages = _split_unquoted(sequence, (" | ",))
        for n, stage in enumerate(stages):
            words = _fit_words(stage)
            if words is not None:
                found.append((words, stages[n - 1] if n else None))
    return found


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join lines ending in a backslash with the next one."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
            pending = None
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1])
            continue
        joined.append((number, text))
    if pending is not None:
        joined.append(pending)
    return joined


def _block_commands(doc: str, lang: str, lines: list[tuple[int, str]]) -> list[Shown]:
    shown: list[Shown] = []
    for number, text in _logical_lines(lines):
        stripped = text.strip()
        if lang in CRON_BLOCKS:
            fields = stripped.split(None, 5)
            if stripped.startswith("#") or len(fields) < 6:
                continue
            stripped = fields[5]
        elif lang in UNIT_BLOCKS:
            if not stripped.startswith("ExecStart="):
                continue
            stripped = stripped.removeprefix("ExecStart=")
        for words, stdin in commands_in(stripped):
            shown.append(Shown(doc, number, stripped, tuple(words), stdin, inline=False))
    return shown


_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def _inline_commands(doc: str, prose: list[tuple[int, str]]) -> list[Shown]:
    """Inline code spans of the prose (paragraph by paragraph) that run `fit`."""
    shown: list[Shown] = []
    paragraphs: list[list[tuple[int, str]]] = [[]]
    for number, text in prose:
        if text.strip():
            paragraphs[-1].append((number, text))
        elif paragraphs[-1]:
            paragraphs.append([])
    for para in paragraphs:
        if not para:
            continue
        text = "\n".join(t for _, t in para)
        for match in _SPAN.finditer(text):
            span = " ".join(match.group(2).replace("\\|", "|").split())
            line = para[0][0] + text.count("\n", 0, match.start())
            for words, stdin in commands_in(span):
                shown.append(Shown(doc, line, span, tuple(words), stdin, inline=True))
    return shown


def extract(path: Path) -> list[Shown]:
    """Every `fit` command line of one Markdown file, in the order shown."""
    doc = path.relative_to(ROOT).as_posix()
    shown: list[Shown] = []
    prose: list[tuple[int, str]] = []
    block: list[tuple[int, str]] | None = None
    fence = lang = ""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if block is None:
            opening = _FENCE.match(text)
            if opening:
                fence, lang, block = opening.group(2), opening.group(3).lower(), []
                prose.append((number, ""))
            else:
                prose.append((number, text))
        elif text.strip().startswith(fence) and not text.strip().strip(fence[0]):
            if lang in SHELL_BLOCKS | CRON_BLOCKS | UNIT_BLOCKS:
                shown.extend(_block_commands(doc, lang, block))
            block = None
            prose.append((number, ""))
        else:
            block.append((number, text))
            prose.append((number, ""))
    shown.extend(_inline_commands(doc, prose))
    return sorted(shown, key=lambda s: s.line)


def all_shown() -> list[Shown]:
    return [s for path in DOCS for s in extract(path)]


# --- turning a shown command line into runs ------------------------------------------------


def _variants(words: tuple[str, ...]) -> list[list[str]]:
    """The command lines a synopsis stands for.

    `[...]` groups are optional, `a|b` (one word) and `[A | B]` are alternatives, `X ...` repeats
    X, a lone `…` abbreviates the rest. Gives the shortest form and the longest, each with every
    choice of alternatives (choices at several places advance together).
    """
    items: list[tuple[bool, list[list[str]]]] = []  # (optional, alternatives of word lists)
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("…", "...", "[...]"):
            if i and words[i - 1].startswith("--"):  # `--from-file …`: a value left out
                items.append((False, [[word]]))
                i += 1
                continue
            break
        if word.startswith("["):
            group = [word[1:]]
            while not group[-1].endswith("]") and i + 1 < len(words):
                i += 1
                group.append(words[i])
            group[-1] = group[-1][:-1]
            alts: list[list[str]] = [[]]
            for w in group:
                if w == "|":
                    alts.append([])
                elif w not in ("...", "…", ""):
                    alts[-1].append(w)
            items.append((True, alts))
        elif word.endswith("...") and len(word) > 3:
            items.append((False, [[word[:-3]]]))
        elif ("|" in word and not word.startswith("-")) or re.fullmatch(r"--?[\w-]+\|--?.*", word):
            items.append((False, [[alt] for alt in word.split("|")]))
        else:
            items.append((False, [[word]]))
        i += 1

    def expand(alts: list[list[str]], k: int) -> list[str]:
        chosen = alts[min(k, len(alts) - 1)]
        out: list[str] = []
        for w in chosen:  # a|b inside a group: one word, alternatives too
            out.append(w.split("|")[min(k, w.count("|"))] if "|" in w else w)
        return out

    width = max(
        [1]
        + [len(alts) for _, alts in items]
        + [w.count("|") + 1 for _, alts in items for alt in alts for w in alt]
    )
    forms: list[list[str]] = []
    for with_optional in (False, True):
        for k in range(width):
            form = [
                w
                for optional, alts in items
                if with_optional or not optional
                for w in expand(alts, k)
            ]
            if form not in forms:
                forms.append(form)
    return forms


# --- the demo clinic's values for the documents' placeholders and examples ------------------

#: demo clients: C000018 has an open `ors.reliable_deterioration` alert, C000020 two alerts
CLIENT, OTHER_CLIENT = "C000018", "C000020"
ALERT = "3"  # one of the demo's 8 open alerts
CLINICIAN = "T03"
SOURCE = "demo_csv"  # the demo's CSV source, also its namespace
CHANNEL = "clinic_mail"  # the documents' notification channel (the demo has none)
HEX_KEY = "8d3f0c6a1b2e4f5a6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3"
NEW_HEX_KEY = "f" + HEX_KEY[1:]
REDCAP_TOKEN = "0123456789ABCDEF0123456789ABCDEF"
REDCAP_SOURCE = "clinic_redcap"  # the documents' REDCap source, on a loopback fake
GOOGLE_SOURCE = "clinic_forms"  # the documents' Google Forms source, on a loopback fake
FORM_ID = "1FormIdFromTheEditorUrl0123456789abcdefghij"  # the documents' example form id
HOME = "@HOME"  # `~`: a home folder of the test's own


def _name_hash(name: str) -> str:
    """`n:` and the first digits of a client name's keyed hash, as `fit clients` shows it."""
    from fit_adapters.simplepractice.names import NameHasher

    digest = NameHasher(HEX_KEY, "simplepractice").name(name)
    assert digest is not None
    return f"n:{digest[:8]}"


#: placeholders (and example values of the documents) -> a value of the demo clinic
VALUES: dict[str, str] = {
    "SOURCE": SOURCE,
    "NAME": SOURCE,
    "NS": SOURCE,
    "C000387": CLIENT,  # the documents' example client ids
    "C000412": OTHER_CLIENT,
    "CLIENT": CLIENT,
    "C001": "C000001",  # the SimplePractice page's example ORS/SRS client ids
    "C002": "C000002",
    "C003": "C000003",
    "n:1a2b3c4d": _name_hash("Alex Example"),  # clients of the synthetic SimplePractice export
    "n:5e6f7a8b": _name_hash("Sam Sample"),
    "DATE": "2022-08-01",
    "TIME": "2022-08-01T00:00:00+00:00",
    "M": "ORS",
    "R": "client",
    "FORM_ID": FORM_ID,
    "DIR": "out",
    "notify_NAME": f"notify_{CHANNEL}",
    "notify_<name>": f"notify_{CHANNEL}",
    "notify_<channel>": f"notify_{CHANNEL}",
    "<key>": "password",
}
#: a placeholder's value by the option it follows
OPTION_VALUES: dict[str, str] = {
    "--clinician": CLINICIAN,
    "--client": CLIENT,
    "--namespace": SOURCE,
    "--keep": "kept-demo",
}
#: files the documents name: each test's working folder holds them (see `_write_files`)
FILE_FOR = {
    ("score",): "export.csv",
    ("clients", "import"): "links.csv",
    ("trajectories", "load"): "TABLE.csv",
}
OAUTH_FILE, SERVICE_ACCOUNT_FILE = "credentials.json", "key.json"

_ROOT_FLAGS = re.compile(r"^(-v+|--verbose|-q|--quiet)$")


def resolve(words: list[str]) -> tuple[list[str], list[str], click.Command, list[str]]:
    """(root options, command path, command, the words after the path). A `--config` of the
    document is dropped: the demo's config is used."""
    rest = list(words)
    root: list[str] = []
    path: list[str] = []
    cmd: click.Command = cli
    ctx = click.Context(cli, info_name="fit")
    while rest:
        word = rest[0]
        if word == "--config":
            del rest[:2]
            continue
        if word.startswith("--config="):
            del rest[0]
            continue
        if _ROOT_FLAGS.match(word) and not path:
            root.append(rest.pop(0))
            continue
        if not isinstance(cmd, click.Group) or word.startswith("-"):
            break
        sub = cmd.get_command(ctx, word)
        if sub is None:  # not a command: click reports it when it runs
            break
        path.append(rest.pop(0))
        cmd = sub
        ctx = click.Context(cmd, info_name=word, parent=ctx)
    return root, path, cmd, rest


def substitute(path: list[str], words: list[str]) -> list[str]:
    """The words with the demo clinic's values for placeholders, files and folders."""
    out: list[str] = []
    for n, word in enumerate(words):
        before = words[n - 1] if n else ""
        if before == "--namespace" or (
            before in OPTION_VALUES and (word.isupper() or word in VALUES)
        ):
            word = OPTION_VALUES[before]
        elif word == "SOURCE" and path[:1] in (["redcap"], ["google"]):
            word = REDCAP_SOURCE if path[0] == "redcap" else GOOGLE_SOURCE
        elif word in ("ID", "N"):
            word = ALERT if path[:1] == ["alerts"] else CLIENT
        elif word == "FILE":
            word = FILE_FOR.get(tuple(path), "FILE")
        elif word in ("…", "..."):  # `--from-file …`
            word = OAUTH_FILE if "oauth" in words else SERVICE_ACCOUNT_FILE
        elif word in VALUES:
            word = VALUES[word]
        elif word.startswith("~"):
            word = HOME + word[1:]
        elif before in ("--out", "--keep") and word.startswith("/"):
            word = word.lstrip("/")  # a folder of the test's own, not /secure/...
        out.append(word)
    return out


@dataclass(frozen=True)
class Case:
    """One command line to run (or, for a command named in prose, to look up)."""

    words: tuple[str, ...]  # after `fit`, the demo's values in place
    stdin: str | None
    shown: tuple[Shown, ...]  # every place the documents show it
    reference: bool  # prose naming a command or option, not a complete command line

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(resolve(list(self.words))[1])

    def __str__(self) -> str:
        return "fit " + shlex.join(self.words)

    def describe(self) -> str:
        places = "\n".join(f"  {s.where}: {s.text}" for s in self.shown)
        return f"{self}\nshown at:\n{places}"


def _is_reference(path: list[str], cmd: click.Command, rest: list[str]) -> bool:
    """Prose that names a command (`fit client erase`) or one of its options (`fit serve
    --path`) rather than a complete command line: a required argument or an option's value is
    missing."""
    if isinstance(cmd, click.Group):
        return not rest and not cmd.invoke_without_command
    try:
        cmd.make_context(path[-1] if path else "fit", list(rest), resilient_parsing=False)
    except click.MissingParameter:
        return True
    except click.BadOptionUsage as exc:
        return "requires an argument" in str(exc)
    except click.UsageError:
        return False
    return False


def _stdin(case_path: list[str], words: list[str], piped: str | None) -> str | None:
    if piped is not None:
        assert re.fullmatch(r"openssl rand -hex 32", piped), f"unknown input command: {piped}"
        return HEX_KEY + "\n"
    if case_path == ["keys", "set"] and "--from-file" not in words:
        return (REDCAP_TOKEN if words[-1] == "token" else HEX_KEY) + "\n"
    if case_path == ["store", "rekey"] and "--new-key-file" not in words:
        return NEW_HEX_KEY + "\n"
    if case_path == ["clients", "link"] and "-" in words:
        return "Alex Example\n"
    return "y\n"  # commands that ask first ("asks first; --yes for scripts")


def collect_cases() -> list[Case]:
    by_key: dict[tuple[tuple[str, ...], str | None, bool], list[Shown]] = {}
    for shown in all_shown():
        for form in _variants(shown.words):
            root, path, cmd, rest = resolve(form)
            root, path, cmd, rest = resolve([*root, *path, *substitute(path, rest)])
            reference = shown.inline and _is_reference(path, cmd, rest)
            if reference:  # what it names: the command and its options
                rest = [w.split("=")[0] for w in rest if w.startswith("-")]
            words = [*root, *path, *rest]
            stdin = None if reference else _stdin(path, words, shown.stdin)
            by_key.setdefault((tuple(words), stdin, reference), []).append(shown)
    cases = [
        Case(words, stdin, tuple(shown), reference)
        for (words, stdin, reference), shown in by_key.items()
    ]
    # a command run in full needs no separate look-up of its name
    run = {c.words for c in cases if not c.reference}
    return [c for c in cases if not (c.reference and c.words in run)]


CASES = collect_cases()
RUNS = [c for c in CASES if not c.reference]
REFERENCES = [c for c in CASES if c.reference]


# --- what a command needs besides the demo clinic, as the documents set it up ----------------


@dataclass(frozen=True)
class Setup:
    config: str = ""  # TOML added to the demo's config ({clinic}, {smtp_port}, ... filled in)
    files: tuple[tuple[str, str], ...] = ()  # (path in the demo folder, text) written first
    secrets: tuple[tuple[str, str], ...] = ()  # ("source.key", value) in the keyring
    before: tuple[tuple[str, ...], ...] = ()  # commands run first (each must exit 0)
    terminal: bool = False  # stdin and stdout are a terminal (to confirm on, to show names on)
    notify: bool = False  # a loopback mail relay and webhook receiver are running
    redcap: bool = False  # source clinic_redcap: a loopback REDCap project (synthetic records)
    google: bool = False  # source clinic_forms: a loopback Google Form and Sheet


#: docs/privacy.md: the privacy key every clinic sets (erasure, readmission, audit by client)
EVERY_RUN_SECRETS = (("privacy.hash_key", HEX_KEY),)

RETENTION = '[privacy]\nretain_after_end = "1y"\n'

#: README "Setting up e-mail digests" and docs/notify.md, on loopback servers
NOTIFY = """
[notify.channels.clinic_mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "starttls"
username = "{smtp_user}"
from = "FIT alerts <fit-alerts@clinic.example>"
cafile = "{smtp_cafile}"
timeout = 5

[notify.channels.team_chat]
type = "webhook"
format = "slack"
timeout = 5

[notify.clinicians]
T03 = "anna.berg@clinic.example"
T07 = ["ben.ng@clinic.example", "ben.ng@clinic-north.example"]

[notify.routes.clinicians]
channel = "clinic_mail"
to = "clinician"
fallback = ["frontdesk@clinic.example"]
when = "digest"
at = ["07:30"]
quiet_days = ["sat", "sun"]

[notify.routes.supervision]
channel = "clinic_mail"
to = ["supervision@clinic.example"]
severities = ["alert"]
when = "immediate"

[notify.routes.alliance]
channel = "team_chat"
rules = ["srs.below_cutoff", "srs.drop"]
when = "immediate"
"""

#: README "SimplePractice bridge", step 4, reading a folder of synthetic exports
SIMPLEPRACTICE = """
[sources.simplepractice]
adapter = "simplepractice"
path = "simplepractice"
namespace_target = "demo_csv"
outbox = "outbox"
clinicians = {{ "Jamie Rivera, LCSW" = "T07" }}
"""
#: an appointment status report of invented people (no real names)
SP_EXPORT = """Date,Time,Client,Client ID,Clinician,Status
06/15/2022,10:00 AM,Alex Example,1001,"Jamie Rivera, LCSW",Show
06/22/2022,10:00 AM,Alex Example,1001,"Jamie Rivera, LCSW",No Show
06/16/2022,11:00 AM,Sam Sample,1002,"Jamie Rivera, LCSW",Show
"""
SP_SETUP = Setup(
    config=SIMPLEPRACTICE,
    files=(("simplepractice/appointment_status.csv", SP_EXPORT),),
    secrets=(("simplepractice.name_key", HEX_KEY),),
)

SETUPS: dict[tuple[str, ...], Setup] = {
    ("purge",): Setup(config=RETENTION),
    ("store", "encrypt"): Setup(secrets=(("store.key", HEX_KEY),)),
    ("store", "rekey"): Setup(secrets=(("store.key", HEX_KEY),), before=(("store", "encrypt"),)),
    ("client", "erase"): Setup(terminal=True),  # "asks first; --yes for scripts"
    ("client", "readmit"): Setup(before=(("client", "erase", CLIENT, "--yes"),)),
    ("notify",): Setup(config=NOTIFY, notify=True),
    ("clients",): SP_SETUP,
    ("clients", "unlink"): replace(SP_SETUP, before=(("clients", "link", "1002", OTHER_CLIENT),)),
    ("clients", "list"): replace(SP_SETUP, terminal=True),  # --show-names: only to a terminal
    ("outbox",): SP_SETUP,
    ("outbox", "clear"): replace(  # a client's files in the outbox: linked, then synced
        SP_SETUP,
        before=(
            ("clients", "link", "Alex Example", CLIENT),
            ("clients", "ignore", "Sam Sample"),
            ("sync",),
        ),
    ),
    ("exports",): SP_SETUP,
}


REDCAP_SETUP = Setup(redcap=True)
GOOGLE_SETUP = Setup(google=True)
#: `fit google remap` after the first sync put the mapping in force
GOOGLE_REMAP_SETUP = Setup(google=True, before=(("sync", "--source", GOOGLE_SOURCE),))


def setup_for(path: tuple[str, ...], words: tuple[str, ...]) -> Setup:
    """What the command of ``path`` needs; `fit redcap ...` and the README's `fit check` and
    `fit sync` of clinic_redcap get the REDCap project (`fit serve` would serve it for ever)."""
    if path[:1] == ("redcap",) or (path[:1] in (("check",), ("sync",)) and REDCAP_SOURCE in words):
        return REDCAP_SETUP
    if path[:1] == ("google",):
        return GOOGLE_REMAP_SETUP if path[:2] == ("google", "remap") else GOOGLE_SETUP
    for n in range(len(path), 0, -1):
        if path[:n] in SETUPS:
            return SETUPS[path[:n]]
    return Setup()


def _google_source(request: pytest.FixtureRequest, keyring_: Any) -> str:
    """The source clinic_forms: the documents' form id, an ORS and an SRS section, mapped."""
    fake = gf.GoogleFake().start()
    request.addfinalizer(fake.stop)
    doc, layout = gf.measure_form(FORM_ID, ["ORS", "SRS"], title="Weekly check-in")
    fake.add_form(FORM_ID, doc)
    fake.add_spreadsheet("1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg")
    keyring_.set_password("fit", f"{GOOGLE_SOURCE}.service_account", gf.service_account_json())
    endpoints = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fake.endpoints().items())
    measures = "".join(
        f"measures.{m} = {{ "
        + ", ".join(f'q{i} = "{q}"' for i, q in enumerate(qids, start=1))
        + " }\n"
        for m, qids in layout.items.items()
    )
    return (
        f'\n[sources.{GOOGLE_SOURCE}]\nadapter = "google_forms"\n'
        f'spreadsheet_id = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg"\n{endpoints}\n'
        f'[[sources.{GOOGLE_SOURCE}.forms]]\nform_id = "{FORM_ID}"\n'
        f'client_id = "{layout.client}"\nclinician = "{layout.clinician}"\n{measures}'
    )


def _toml_tables(name: str, table: dict[str, Any]) -> str:
    """``table`` as the TOML table ``[name]`` and its sub-tables (values as JSON writes them,
    which TOML reads alike for strings, numbers and lists of them)."""
    lines = [f"[{name}]"]
    subtables = ""
    for key, value in table.items():
        if isinstance(value, dict):
            subtables += _toml_tables(f"{name}.{key}", value)
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n\n" + subtables


# --- the demo clinic and the files the documents name ---------------------------------------


@pytest.fixture(scope="module")
def pristine_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`fit demo --keep` once per module: (the folder the commands use, a pristine copy)."""
    base = tmp_path_factory.mktemp("doc-demo")
    clinic = base / "clinic"
    res = CliRunner().invoke(cli, ["demo", "--keep", str(clinic)])
    assert res.exit_code == 0, res.output
    shutil.copytree(clinic, base / "pristine")
    return clinic, base / "pristine"


@pytest.fixture
def clinic(pristine_demo: tuple[Path, Path]) -> Path:
    """The demo folder as `fit demo` left it, at the same path (its config names absolute
    paths), whatever the commands before changed."""
    folder, pristine = pristine_demo
    shutil.rmtree(folder)
    shutil.copytree(pristine, folder)
    return folder


def _write_files(work: Path, home: Path, clinic: Path) -> None:
    """The files the documents' command lines name, in the working folder and the home."""
    lines = (clinic / "admins.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    # the demo plants its bad rows at the end: a FIT long CSV of the good ones
    (work / "export.csv").write_text("".join(lines[:527]), encoding="utf-8")
    (work / "links.csv").write_text("name,client id\nAlex Example,C000001\n", encoding="utf-8")
    with (work / "TABLE.csv").open("w", newline="", encoding="utf-8") as fh:
        table = csv.writer(fh)
        table.writerow(["intake", "session", "expected", "lower", "upper"])
        for intake in range(10, 31, 5):
            for session in range(2, 11):
                expected = intake + (40 - intake) * session / 20
                table.writerow([intake, session, expected, expected - 3, expected + 3])
    key = {  # the shape of a service account's key file; it signs nothing
        "type": "service_account",
        "project_id": "fit-demo",
        "client_email": "fit-demo@fit-demo.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    (work / SERVICE_ACCOUNT_FILE).write_text(json.dumps(key), encoding="utf-8")
    (home / "Downloads").mkdir(parents=True)
    (home / "Downloads" / "project-123abc.json").write_text(json.dumps(key), encoding="utf-8")
    oauth = {
        "type": "authorized_user",
        "client_id": "fit-demo.apps.googleusercontent.com",
        "client_secret": "not-a-secret",
        "refresh_token": "not-a-token",
    }
    (work / OAUTH_FILE).write_text(json.dumps(oauth), encoding="utf-8")
    (work / "secure" / "requests").mkdir(parents=True)  # docs/privacy.md's /secure/requests


class _Timeout(Exception):
    pass


@pytest.fixture
def deadline() -> Iterator[None]:
    """A command that would wait for ever (a server, a prompt) fails the test instead."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Timeout("the command did not finish within 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def invoke(words: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, words, input=stdin, prog_name="fit")


def run(
    case: Case,
    clinic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Result:
    """Run one documented command line as the documents set it up; the result."""
    setup = setup_for(case.path, case.words)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    _write_files(work, home, clinic)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    keyring_ = request.getfixturevalue("memory_keyring")
    for name, value in (*EVERY_RUN_SECRETS, *setup.secrets):
        keyring_.set_password("fit", name, value)
    fields = {"clinic": clinic}
    if setup.notify:
        smtp = request.getfixturevalue("smtp_fake")()
        hook = request.getfixturevalue("webhook_fake")(flavour="slack")
        keyring_.set_password("fit", "notify_clinic_mail.password", smtp.password)
        keyring_.set_password("fit", "notify_team_chat.url", hook.url)
        fields |= {"smtp_port": smtp.port, "smtp_user": smtp.user, "smtp_cafile": smtp.cafile}
    extra = setup.config.format(**fields)
    if setup.redcap:  # README "Setting up a REDCap project", steps 5 and 6
        project = request.getfixturevalue("redcap_fake")(rf.clinic_project(20, seed=9))
        keyring_.set_password("fit", f"{REDCAP_SOURCE}.token", rf.TOKEN)
        options = {"adapter": "redcap", **rf.source_options(project)}
        extra += "\n" + _toml_tables(f"sources.{REDCAP_SOURCE}", options)
    if setup.google:  # README "Setting up the form, the sheet and the service account"
        extra += _google_source(request, keyring_)
    if extra:
        config = clinic / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    for name, text in setup.files:
        (clinic / name).parent.mkdir(parents=True, exist_ok=True)
        (clinic / name).write_text(text, encoding="utf-8")
    if setup.terminal:  # CliRunner's streams (click.testing's own class) say they are one
        monkeypatch.setattr("click.testing._NamedTextIOWrapper.isatty", lambda self: True)
    with_config = ["--config", str(clinic / "config.toml")]
    for before in setup.before:
        res = invoke([*with_config, *before])
        assert res.exit_code == 0, f"setting up with fit {shlex.join(before)}:\n{res.output}"
    words = [w.replace(HOME, str(home)) for w in case.words]
    if case.path[:1] != ("init",):  # `fit init` writes the default config of a fresh home
        words = [*with_config, *words]
    return invoke(words, case.stdin)


#: Documented commands that need what the demo clinic does not have. Each must stop with the
#: clean error that says what is missing: (pattern of the command line after `fit`, exit code,
#: pattern of the error on stderr, why). Everything else must exit 0 on the demo clinic.
NEEDS_MORE: list[tuple[str, int, str, str]] = [
    (
        r"^serve\b",
        3,
        r"^error: (no source named 'clinic_redcap' in the config|no REDCap source to serve)",
        "a REDCap source, and it serves until stopped (tests/test_redcap_cli.py and "
        "tests/test_serve_abuse.py run it against a loopback fake)",
    ),
    (
        r"^trajectories fit\b",
        3,
        r"^error: cannot fit a trajectory model: .*no session from 2 to 10 has at least \d+ "
        r"closed episodes",
        "more closed episodes than the demo's 40 clients give (the command says so)",
    ),
    (
        r"^sync --source nope$",
        3,
        r"^error: no source named 'nope' in the config",
        "docs/hardening.md shows this error on purpose",
    ),
]


def test_every_entry_of_needs_more_is_still_needed() -> None:
    """The list of commands that may fail on the demo stays as short as the documents allow."""
    lines = [shlex.join(c.words) for c in RUNS]
    for pattern, _code, _error, why in NEEDS_MORE:
        assert any(re.search(pattern, line) for line in lines), f"unused: {pattern} ({why})"


def needs_more(case: Case) -> tuple[int, str, str] | None:
    line = shlex.join(case.words)
    for pattern, code, error, why in NEEDS_MORE:
        if re.search(pattern, line):
            return code, error, why
    return None


@pytest.mark.parametrize("case", RUNS, ids=str)
def test_documented_command_line_runs_on_the_demo(
    case: Case,
    clinic: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    deadline: None,
) -> None:
    res = run(case, clinic, tmp_path, monkeypatch, request)
    said = f"{case.describe()}\nexit code {res.exit_code}; output:\n{res.output}"
    assert res.exit_code != 2, "the documented command line does not parse:\n" + said
    crashed = res.exception is not None and not isinstance(res.exception, SystemExit)
    assert not crashed, f"it crashed: {res.exception!r}\n{said}"
    assert res.exit_code != 6 and "error: internal error" not in res.output, said
    assert "Traceback" not in res.output, said
    expected = needs_more(case)
    if expected is None:
        assert res.exit_code == 0, said
    else:
        code, error, why = expected
        assert res.exit_code == code, f"expected exit {code} (it needs {why})\n{said}"
        assert re.search(error, res.stderr, re.MULTILINE), f"expected /{error}/\n{said}"


def _option_names(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


@pytest.mark.parametrize("case", REFERENCES, ids=str)
def test_command_named_in_prose_exists(case: Case) -> None:
    """Prose that names a command or an option (`fit client erase`, `fit serve --path`) names
    one that exists."""
    _root, path, cmd, rest = resolve(list(case.words))
    assert path, case.describe()
    unknown = [w for w in rest if w not in _option_names(cmd) | {"-h", "--help"}]
    assert not unknown, f"fit {' '.join(path)} has no option {unknown}\n{case.describe()}"


# --- the reading of the documents itself ----------------------------------------------------


def test_every_document_shows_commands_and_all_are_read() -> None:
    """The extraction finds the documents' commands, in every form they are written in."""
    shown = all_shown()
    docs = {s.doc for s in shown}
    assert {"README.md", "docs/privacy.md", "docs/notify.md", "contrib/README.md"} <= docs
    texts = {(s.doc, s.words, s.stdin) for s in shown}
    assert ("README.md", ("sync", "-v"), None) in texts  # a shell block, comment cut
    assert ("README.md", ("alerts", "ack", "ID"), None) in texts  # an inline span
    assert ("README.md", ("sync",), None) in texts  # a cron line's command
    assert (
        "docs/redcap.md",
        ("serve", "--host", "127.0.0.1", "--port", "8765", "--path", "/det"),
        None,
    ) in texts  # a systemd ExecStart line
    assert ("docs/privacy.md", ("keys", "set", "store", "key"), "openssl rand -hex 32") in texts
    assert ("contrib/README.md", ("sync",), None) in texts  # flock -n LOCK fit sync
    assert not any(s.words[0].startswith("demo:") for s in shown)  # `fit demo`'s output
    assert len(RUNS) > 100 and len(REFERENCES) > 10


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("fit alerts ack '#7'   # by the id the list prints", [(["alerts", "ack", "#7"], None)]),
        (
            'fit clients link "Alex Example" C001   # by name',
            [(["clients", "link", "Alex Example", "C001"], None)],
        ),
        ("$ fit stats --by site | head", [(["stats", "--by", "site"], None)]),
        (
            "openssl rand -hex 32 | fit keys set privacy hash_key",
            [(["keys", "set", "privacy", "hash_key"], "openssl rand -hex 32")],
        ),
        (
            "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/fit demo",
            [(["demo"], None)],
        ),
        (
            "sudo -u fit env STATE_DIRECTORY=/var/lib/fit FIT_CONFIG=/c.toml fit notify preview",
            [(["notify", "preview"], None)],
        ),
        ("python -m fit_cli rules --json", [(["rules", "--json"], None)]),
        (
            "fit redcap template clinic_redcap --merge > dictionary.csv",
            [(["redcap", "template", "clinic_redcap", "--merge"], None)],
        ),
        ("fit demo: synthetic clinic (no real people)", []),  # output, not a command
        ("pip install 'fit-sync[reports]'", []),
    ],
)
def test_command_lines_are_read_as_a_shell_reads_them(
    line: str, expected: list[tuple[list[str], str | None]]
) -> None:
    assert commands_in(line) == expected


@pytest.mark.parametrize(
    ("synopsis", "forms"),
    [
        ("rules [--json]", ["rules", "rules --json"]),
        ("keys set|get", ["keys set", "keys get"]),
        (
            "stats [--by clinician|site] [--json|--csv]",
            ["stats", "stats --by clinician --json", "stats --by site --csv"],
        ),
        (
            "google remap SOURCE [--form FORM_ID ...] [--since TIME | --from-start]",
            [
                "google remap SOURCE",
                "google remap SOURCE --form FORM_ID --since TIME",
                "google remap SOURCE --form FORM_ID --from-start",
            ],
        ),
        (
            "report client CLIENT... [--no-srs]",
            ["report client CLIENT", "report client CLIENT --no-srs"],
        ),
        ("redcap …", ["redcap"]),
    ],
)
def test_a_synopsis_stands_for_its_shortest_and_longest_forms(
    synopsis: str, forms: list[str]
) -> None:
    ((words, _stdin),) = commands_in("fit " + synopsis)
    assert [" ".join(f) for f in _variants(tuple(words))] == forms


def _demo_output_block() -> tuple[int, list[str]]:
    """The README's sample of what `fit demo` prints: (its first line's number, its lines)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("fit demo: synthetic clinic (no real people), CSV source → scores → alerts")
    end = lines.index("```", start)
    return start + 1, lines[start:end]


def test_the_readme_shows_what_fit_demo_prints(tmp_path: Path) -> None:
    """The sample output under the quick start is `fit demo`'s ("..." stands for the rest of a
    long line)."""
    first, shown = _demo_output_block()
    res = invoke(["demo", "--keep", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    printed = [line for line in res.stdout.splitlines() if not line.startswith("  files kept")]
    assert len(shown) == len(printed), f"README.md:{first}: {len(shown)} lines, printed:\n" + (
        "\n".join(printed)
    )
    for n, (doc, out) in enumerate(zip(shown, printed, strict=True)):
        same = out.startswith(doc[:-3]) if doc.endswith("...") else out == doc
        assert same, f"README.md:{first + n}: shows\n  {doc}\nbut fit demo prints\n  {out}"
