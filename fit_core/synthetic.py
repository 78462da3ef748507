"""A seeded synthetic clinic in the FIT long CSV format, for ``fit demo``, tests and benchmarks.

Everything here is pure and deterministic given the seed: the only randomness is one
``random.Random(seed)`` per generator, and nothing reads the clock or the environment. Ids are
neutral (``C000001``, ``T03``, ``C000001-E1``); there are never names or free text.

The data follow the published shape of outpatient ORS/SRS data (docs/clinical.md), no clinic's:

- 8-12 clinicians with uneven caseloads; about 80 % adult clients (18-70), 12 % adolescents
  (13-17, ORS/SRS) and 8 % children (6-12, CORS/CSRS); some children and a few adolescents also
  have a ``parent`` collateral rater with their own ORS-family series (and an SRS).
- Weekly-ish sessions on weekdays (7 days with jitter, sometimes 2-6 weeks' gap); episodes of
  1-20 sessions, many short, median about 6; a few clients come back for a second episode.
- Intake scores from a clinical / non-clinical mixture per age band: adult ORS mean about 19,
  SD about 6.6, about 20 % at or above the band's cutoff.
- Trajectory types: responders (a negatively accelerated curve toward +8-12 points), flat and
  deteriorating courses, plus per-session noise (SD 2.5). Over episodes of two or more sessions
  about 68 % end with a reliable improvement (>= 5 points), 27 % with no reliable change and 5 %
  with a reliable deterioration.
- About 20 % of clients drop out: their last session comes before they reached the target.
- SRS at the end of every session (rarely missing), mostly 36-40, about 10 % below 36, lower for
  clients who drop out or get worse; now and then a drop of a point or more.
- Items on the 0.1 scale (one decimal) that sum exactly to the session's total; a few rows give
  the total alone (paper scores typed in), the way the FIT long CSV format allows.

:func:`generate_clinic` streams rows client by client (a client's rows are in chronological
order), so a million administrations never sit in memory. :func:`generate_rows` gives exactly N
rows, :func:`write_csv` writes them, and :func:`inject_bad_rows` / :func:`bad_rows` add the
deliberately invalid rows the demo uses to show the quarantine.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from itertools import count, islice
from operator import itemgetter
from pathlib import Path
from statistics import NormalDist

__all__ = [
    "BAD_ROW_KINDS",
    "COLUMNS",
    "ROWS_PER_CLIENT",
    "bad_rows",
    "generate_clinic",
    "generate_rows",
    "inject_bad_rows",
    "write_csv",
]

Row = dict[str, str]

COLUMNS: tuple[str, ...] = (
    "client_id",
    "clinician_id",
    "episode_id",
    "administered_at",
    "measure",
    "rater",
    "age",
    "q1",
    "q2",
    "q3",
    "q4",
    "total",
    "source_key",
)
"""The header :func:`write_csv` writes, in this order."""

ROWS_PER_CLIENT = 14
"""About how many rows (administrations) one client yields with the default settings."""

DEFAULT_START = date(2022, 1, 3)
"""The first arrival (a Monday). A three-year clinic ends well before today: fit-sync refuses
administration dates after tomorrow (see :mod:`fit_core.inputs`)."""

# --- model parameters (tuned so the rates land inside docs/clinical.md's sanity ranges) ---------

# age band → (ORS-family measure, SRS-family measure, ORS cutoff)
_BANDS: dict[str, tuple[str, str, float]] = {
    "adult": ("ORS", "SRS", 25.0),
    "adolescent": ("ORS", "SRS", 28.0),
    "child": ("CORS", "CSRS", 32.0),
}
_P_CHILD = 0.08
_P_ADOLESCENT = 0.12
_P_NONCLINICAL = 0.16  # share of intakes drawn from the non-clinical component
_INTAKE_SD = 5.5  # clinical component: N(cutoff - 7.5, 5.5)
_NONCLIN_SD = 4.0  # non-clinical component: N(cutoff + 3, 4)
_NOISE_SD = 2.5  # per-session ORS noise
_ITEM_SD_ORS = 13  # spread of ORS items around total/4, in tenths of a point
_ITEM_SD_SRS = 4  # SRS items sit close together near the top of the scale
# trajectory types: cumulative probabilities (responder, flat, deteriorating)
_P_RESPONDER = 0.85
_P_FLAT = 0.095  # the remaining 0.055 deteriorate
_P_SINGLE_SESSION = 0.06
_GAIN_RESPONDER = 11.5  # mean asymptotic improvement of a responder, in points
_P_SECOND_EPISODE = 0.07
_P_PARENT = {"child": 0.45, "adolescent": 0.12, "adult": 0.0}
_P_PARENT_ATTENDS = 0.75
_SRS_MEAN = 38.3
_SRS_CLIENT_SD = 1.5
_SRS_SESSION_SD = 0.7
# SRS drift over an episode: a little lower at the first session, then rising (0-based session)
_SRS_TREND = tuple(0.6 * (1.0 - math.exp(-k / 2.0)) for k in range(20))


def generate_clinic(
    n_clients: int,
    seed: int = 1,
    start: date = DEFAULT_START,
    *,
    n_clinicians: int | None = None,
    span_days: int | None = None,
    dropout_rate: float = 0.20,
    total_only_rate: float = 0.03,
    srs_missing_rate: float = 0.02,
    first_client: int = 1,
) -> Iterator[Row]:
    """Yield the FIT long CSV rows of ``n_clients`` synthetic clients, one client at a time.

    Each row is a ``dict`` with the keys of :data:`COLUMNS`, all strings (an empty string is an
    empty cell). Rows of one client come in chronological order: for each session the ORS-family
    administration at the top of the hour (``2022-01-03T09:00:00``, clinic-local time without an
    offset) and the SRS-family one at 50 minutes past, collateral raters' rows next to the client's.

    ``n_clinicians`` defaults to 8-12 (drawn from the seed). Clients arrive in id order spread
    over ``span_days`` from ``start`` (default: about 25 new clients a week, at most three years).
    ``dropout_rate`` is the share of clients whose first episode ends before reaching the target;
    ``total_only_rate`` the share of rows that give the total without items (in steps of 1/1024);
    ``srs_missing_rate`` the share of sessions without an SRS. ``first_client`` is the number of
    the first client id (to continue a clinic without reusing ids).
    """
    if n_clients < 0:
        raise ValueError("n_clients must be >= 0")
    rng = random.Random(seed)
    if n_clinicians is None:
        n_clinicians = rng.randint(8, 12)
    if not 1 <= n_clinicians <= 99:
        raise ValueError("n_clinicians must be between 1 and 99")
    if span_days is None:
        span_days = min(3 * 365, max(28, n_clients * 7 // 25))
    clinicians = [f"T{i:02d}" for i in range(1, n_clinicians + 1)]
    # uneven caseloads: some clinicians are full-time, some part-time
    weights = [rng.uniform(0.4, 1.0) for _ in clinicians]
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    gen = _ClinicGenerator(rng, clinicians, cum, dropout_rate, total_only_rate, srs_missing_rate)
    start_ord = start.toordinal()
    rand = rng.random
    for i in range(n_clients):
        number = first_client + i
        arrival = start_ord + (i * span_days) // max(n_clients, 1) + int(rand() * 7)
        yield from gen.client(number, arrival)


def generate_rows(
    n_administrations: int, seed: int = 1, start: date = DEFAULT_START
) -> Iterator[Row]:
    """Yield exactly ``n_administrations`` rows of a synthetic clinic (about N/14 clients).

    The last client may be cut short; if the clinic runs out of rows first (only possible for a
    small N), more clients follow with new ids.
    """
    if n_administrations < 0:
        raise ValueError("n_administrations must be >= 0")
    remaining = n_administrations
    first = 1
    round_no = 0
    while remaining > 0:
        n_clients = max(1, math.ceil(remaining / ROWS_PER_CLIENT * 1.05))
        sub_seed = seed if round_no == 0 else seed * 1_000_003 + round_no
        clinic = generate_clinic(n_clients, sub_seed, start, first_client=first)
        counter = count()  # zip() advances it once per row taken (no Python-level loop)
        yield from map(itemgetter(0), zip(islice(clinic, remaining), counter, strict=False))
        remaining -= next(counter)
        first += n_clients
        round_no += 1


def write_csv(path: str | Path, rows: Iterable[dict[str, str]], delimiter: str = ",") -> int:
    """Stream ``rows`` to a UTF-8 CSV file with the :data:`COLUMNS` header; returns the row count.

    Keys missing from a row are written as empty cells; keys not in :data:`COLUMNS` are ignored.
    The output is exactly what :func:`csv.writer` (minimal quoting, ``\\n`` line ends) writes.
    """
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError("delimiter must be one character other than a quote or a line break")
    getter = itemgetter(*COLUMNS)
    fill = dict.fromkeys(COLUMNS, "").__or__  # {all columns: ""} | row
    join = delimiter.join
    n_cols = len(COLUMNS)
    written = 0
    it = iter(rows)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        writer.writerow(COLUMNS)
        # This writer is on the hot path of `fit demo` and the benchmarks, so it works in
        # batches with no Python-level step per row. A batch whose values need no quoting (no
        # delimiter, quote or line break inside a value: every generated row) is joined as is,
        # which is what csv.writer would write, at a third of the cost; any other batch goes
        # through csv.writer.
        while batch := list(islice(it, 4096)):
            values = list(map(getter, map(fill, batch)))
            try:
                chunk = "\n".join(map(join, values)) + "\n"
            except TypeError:  # a value that is not a string: let csv.writer format it
                chunk = ""
            n = len(values)
            if (
                chunk
                and '"' not in chunk
                and "\r" not in chunk
                and chunk.count("\n") == n
                and chunk.count(delimiter) == (n_cols - 1) * n
            ):
                fh.write(chunk)
            else:
                writer.writerows(values)
            written += n
    return written


# --- bad rows for the demo ------------------------------------------------------------------

BAD_ROW_KINDS: tuple[str, ...] = (
    "out_of_range_item",
    "partial_items",
    "non_numeric",
    "total_disagrees",
    "unknown_measure",
    "bad_date",
    "missing_client_id",
)
"""The kinds of invalid row :func:`bad_rows` makes, in the order it makes them."""


def bad_rows(base: Mapping[str, str] | None = None, start: int = 1) -> list[Row]:
    """One deliberately invalid row of each kind in :data:`BAD_ROW_KINDS`.

    Rows are built from ``base`` (a valid row; a fixed one when None) with source keys
    ``bad-001``, ``bad-002``... from ``start``, at 23:00 on the base row's date so that even a
    row that was accepted would not collide with a real session.
    """
    template = dict(base) if base is not None else _default_bad_base()
    day = template.get("administered_at", DEFAULT_START.isoformat())[:10]
    template.update(
        administered_at=f"{day}T23:00:00",
        q1="5.0",
        q2="6.0",
        q3="4.5",
        q4="5.5",
        total="",
    )
    out: list[Row] = []
    for n, kind in enumerate(BAD_ROW_KINDS, start=start):
        row = dict(template)
        row["source_key"] = f"bad-{n:03d}"
        if kind == "out_of_range_item":
            row["q2"] = "12.5"
        elif kind == "partial_items":
            row["q3"] = row["q4"] = ""
        elif kind == "non_numeric":
            row["q1"] = "abc"
        elif kind == "total_disagrees":
            row["total"] = "26.0"  # the items sum to 21.0
        elif kind == "unknown_measure":
            row["measure"] = "XYZ"
        elif kind == "bad_date":
            row["administered_at"] = "2025-13-45"
        elif kind == "missing_client_id":
            row["client_id"] = ""
        out.append({k: row.get(k, "") for k in COLUMNS})
    return out


def inject_bad_rows(
    rows: Iterable[Row], rng: random.Random, rate: float = 0.001, limit: int | None = None
) -> Iterator[Row]:
    """Pass ``rows`` through, adding an invalid row after a row with probability ``rate``.

    Bad rows cycle through :data:`BAD_ROW_KINDS` (so the first seven cover every kind), are
    built from the row they follow, and get distinct source keys ``bad-001``, ``bad-002``...
    ``limit`` caps how many are added.
    """
    made = 0
    kinds = len(BAD_ROW_KINDS)
    for row in rows:
        yield row
        if (limit is None or made < limit) and rng.random() < rate:
            kind = made % kinds
            yield bad_rows(row, start=made + 1 - kind)[kind]
            made += 1


def _default_bad_base() -> Row:
    return {
        "client_id": "C999999",
        "clinician_id": "T01",
        "episode_id": "C999999-E1",
        "administered_at": DEFAULT_START.isoformat(),
        "measure": "ORS",
        "rater": "client",
        "age": "35",
        "q1": "",
        "q2": "",
        "q3": "",
        "q4": "",
        "total": "",
        "source_key": "",
    }


# --- the generator ----------------------------------------------------------------------------

_ORS_TIMES = tuple(f"T{h:02d}:00:00" for h in range(24))
_SRS_TIMES = tuple(f"T{h:02d}:50:00" for h in range(24))
_TENTHS = tuple(f"{t // 10}.{t % 10}" for t in range(401))  # 0 → "0.0" ... 400 → "40.0"
_Z_BITS = 12
# standard normal quantiles at 4096 evenly spaced probabilities: ``_Z[rng.getrandbits(12)]`` is
# a (finely discretised) N(0, 1) draw for a fraction of the cost of ``rng.gauss``
_Z = tuple(NormalDist().inv_cdf((i + 0.5) / (1 << _Z_BITS)) for i in range(1 << _Z_BITS))
# days to the next session, drawn as ``_GAPS[rng.getrandbits(7)]``: mostly a week (62 %),
# a few days either way (19 %), two weeks (12 %), three (5 %), four to six (3 %)
_GAP_BITS = 7
_GAPS = (7,) * 79 + (5, 6, 8, 9) * 6 + (14,) * 15 + (21,) * 6 + (28, 32, 36, 42)


def _triangular(u: float, low: float, high: float, mode: float) -> float:
    """A triangular draw from a uniform ``u`` (what ``random.triangular`` does, inlined)."""
    c = (mode - low) / (high - low)
    if u > c:
        return high + (low - high) * math.sqrt((1.0 - u) * (1.0 - c))
    return low + (high - low) * math.sqrt(u * c)


def _clip10(value: float, high: int = 400) -> int:
    """A total in points → integer tenths, clipped to 0..high."""
    t = int(value * 10.0 + 0.5) if value > 0 else 0
    return high if t > high else t


class _ClinicGenerator:
    """Holds the clinic-wide state (rng, clinicians, caches) and makes one client's rows.

    Written for speed (``fit demo`` and the benchmarks generate millions of rows): normal draws
    come from the :data:`_Z` table, totals are integer tenths, and the per-row work is inlined.
    """

    def __init__(
        self,
        rng: random.Random,
        clinicians: list[str],
        cum_weights: list[float],
        dropout_rate: float,
        total_only_rate: float,
        srs_missing_rate: float,
    ) -> None:
        self.rng = rng
        self.clinicians = clinicians
        self.cum_weights = cum_weights
        self.dropout_rate = dropout_rate
        self.total_only_rate = total_only_rate
        self.srs_missing_rate = srs_missing_rate
        self._days: dict[int, str] = {}

    # -- small helpers --

    def _normal(self, mean: float, sd: float) -> float:
        return mean + _Z[self.rng.getrandbits(_Z_BITS)] * sd

    def _day(self, ordinal: int) -> str:
        text = self._days.get(ordinal)
        if text is None:
            if len(self._days) > 20_000:
                self._days.clear()
            text = self._days[ordinal] = date.fromordinal(ordinal).isoformat()
        return text

    def _clinician(self) -> str:
        x = self.rng.random() * self.cum_weights[-1]
        for name, c in zip(self.clinicians, self.cum_weights, strict=True):
            if x < c:
                return name
        return self.clinicians[-1]

    @staticmethod
    def _weekday(ordinal: int) -> int:
        """Move a Saturday back to Friday and a Sunday on to Monday."""
        wd = (ordinal - 1) % 7  # date.fromordinal(1) is a Monday
        if wd == 5:
            return ordinal - 1
        if wd == 6:
            return ordinal + 1
        return ordinal

    def _intake(self, cutoff: float) -> float:
        """An intake total: a clinical / non-clinical mixture around the band's cutoff."""
        if self.rng.random() < _P_NONCLINICAL:
            x = self._normal(cutoff + 3.0, _NONCLIN_SD)
        else:
            x = self._normal(cutoff - 7.5, _INTAKE_SD)
        return 0.0 if x < 0.0 else 40.0 if x > 40.0 else x

    def _gain(self, kind: int, intake: float) -> float:
        """The asymptotic change for a trajectory type, limited by the room left on the scale."""
        if kind == 0:  # responder
            gain = self._normal(_GAIN_RESPONDER, 2.2)
            return max(min(gain, 0.9 * (39.5 - intake)), 0.0)
        if kind == 1:  # flat
            return self._normal(0.8, 1.8)
        return max(self._normal(-8.0, 2.0), -0.9 * intake)  # deteriorating

    def _kind(self) -> int:
        """0 responder, 1 flat, 2 deteriorating."""
        r = self.rng.random()
        return 0 if r < _P_RESPONDER else 1 if r < _P_RESPONDER + _P_FLAT else 2

    def _length(self) -> int:
        """Planned number of sessions of an episode: many short, median about 6, at most 20."""
        if self.rng.random() < _P_SINGLE_SESSION:
            return 1
        n = int(math.exp(self._normal(1.95, 0.6)) + 0.5)
        return 2 if n < 2 else 20 if n > 20 else n

    # -- one client --

    def client(self, number: int, arrival: int) -> list[Row]:
        """All rows of one client (a few dozen at most), in chronological order."""
        rng = self.rng
        rand = rng.random
        client = f"C{number:06d}"
        r = rand()
        if r < _P_CHILD:
            band, age = "child", 6 + int(rand() * 7)
        elif r < _P_CHILD + _P_ADOLESCENT:
            band, age = "adolescent", 13 + int(rand() * 5)
        else:
            band, age = "adult", int(_triangular(rand(), 18.0, 71.0, 30.0))
        has_parent = rng.random() < _P_PARENT[band]
        dropout = rng.random() < self.dropout_rate
        clinician = self._clinician()
        rows: list[Row] = []
        day = self._weekday(arrival)
        n_episodes = 2 if rng.random() < _P_SECOND_EPISODE else 1
        for e in range(1, n_episodes + 1):
            if e > 1:
                day = self._weekday(day + 60 + int(rand() * 181))
                if rng.random() < 0.3:
                    clinician = self._clinician()
            day = self._episode(
                rows, client, clinician, e, band, str(age), has_parent, dropout and e == 1, day
            )
        return rows

    def _episode(
        self,
        rows: list[Row],
        client: str,
        clinician: str,
        e: int,
        band: str,
        age: str,
        has_parent: bool,
        dropout: bool,
        day: int,
    ) -> int:
        """Append one episode's rows; returns the day of its last session."""
        rng = self.rng
        rand = rng.random
        bits = rng.getrandbits
        z = _Z
        exp = math.exp
        ors_measure, srs_measure, cutoff = _BANDS[band]
        episode = f"{client}-E{e}"
        kind = self._kind()
        intake = self._intake(cutoff)
        gain = self._gain(kind, intake)
        tau = 1.0 + 2.0 * rand()
        intake10 = _clip10(intake)

        n = self._length()
        # observed ORS totals (tenths): the intake as drawn, then the curve plus noise
        ors = [intake10]
        for k in range(1, n):
            x = intake + gain * (1.0 - exp(-k / tau)) + z[bits(_Z_BITS)] * _NOISE_SD
            ors.append(_clip10(x))
        if dropout:
            # leaves early, before reaching the target (an improvement of 5 points)
            n = 1 + int(rand() * min(n, 5))
            while n > 1 and ors[n - 1] >= intake10 + 50:
                n -= 1

        parent: list[int] | None = None
        if has_parent:
            p_intake = min(max(self._normal(intake - 1.5, 4.0), 0.0), 40.0)
            p_gain = gain * (0.6 + 0.6 * rand()) if kind != 1 else self._gain(1, p_intake)
            p_tau = 1.0 + 2.5 * rand()
            parent = [_clip10(p_intake)]
            for k in range(1, n):
                x = p_intake + p_gain * (1.0 - exp(-k / p_tau)) + z[bits(_Z_BITS)] * _NOISE_SD
                parent.append(_clip10(x))

        # alliance: a client-level mean, lower for clients who leave or get worse, rising a little
        srs_level = self._normal(_SRS_MEAN, _SRS_CLIENT_SD) - 0.4
        if dropout:
            srs_level -= 1.5
        if kind == 2:
            srs_level -= 1.0
        p_srs_level = self._normal(_SRS_MEAN, _SRS_CLIENT_SD) - 0.4
        srs_missing = self.srs_missing_rate

        emit = _emitter(rows, rng, self.total_only_rate, client, clinician, episode, age)
        days = self._days
        hour = 8 + int(rand() * 10)
        for k in range(n):
            if k:
                day += _GAPS[bits(_GAP_BITS)]
                wd = (day - 1) % 7  # date.fromordinal(1) is a Monday
                if wd >= 5:  # Saturday → Friday, Sunday → Monday
                    day += -1 if wd == 5 else 1
                if rand() < 0.1:
                    hour = 8 + int(rand() * 10)
            d = days.get(day) or self._day(day)
            ors_at = d + _ORS_TIMES[hour]
            srs_at = d + _SRS_TIMES[hour]
            prefix = f"{episode}-S{k + 1:02d}-"
            emit(ors_at, ors_measure, "client", ors[k], _ITEM_SD_ORS, prefix + ors_measure)
            parent_here = parent is not None and (k == 0 or rand() < _P_PARENT_ATTENDS)
            if parent_here and parent is not None:
                emit(ors_at, ors_measure, "parent", parent[k], _ITEM_SD_ORS,
                     prefix + ors_measure + "-parent")  # fmt: skip
            trend = _SRS_TREND[k]
            if rand() >= srs_missing:
                srs = _clip10(srs_level + trend + z[bits(_Z_BITS)] * _SRS_SESSION_SD)
                emit(srs_at, srs_measure, "client", srs, _ITEM_SD_SRS, prefix + srs_measure)
            if parent_here:
                srs = _clip10(p_srs_level + trend + z[bits(_Z_BITS)] * _SRS_SESSION_SD)
                emit(srs_at, "SRS", "parent", srs, _ITEM_SD_SRS, prefix + "SRS-parent")
        return day


def _emitter(
    rows: list[Row],
    rng: random.Random,
    total_only_rate: float,
    client: str,
    clinician: str,
    episode: str,
    age: str,
) -> Callable[[str, str, str, int, int, str], None]:
    """A function that appends one row of this episode to ``rows``.

    Its arguments are (when, measure, rater, total in tenths, item spread in tenths, source key).
    The items split the total into four 0.0-10.0 values that sum to it exactly; a share
    ``total_only_rate`` of rows give the total alone instead.
    """
    append = rows.append
    bits = rng.getrandbits
    z = _Z
    t = _TENTHS
    total_only = round(total_only_rate * 1024)  # out of 2**10

    def emit(when: str, measure: str, rater: str, total10: int, spread: int, key: str) -> None:
        # one draw of 46 random bits: 10 decide "total only", 3 x 12 pick the item deviations
        r = bits(46)
        if r >> 36 < total_only:
            q1 = q2 = q3 = q4 = ""
            total = t[total10]
        else:
            base = total10 * 0.25 + 0.5
            a = int(base + z[r & 4095] * spread)
            b = int(base + z[(r >> 12) & 4095] * spread)
            c = int(base + z[(r >> 24) & 4095] * spread)
            a = 0 if a < 0 else 100 if a > 100 else a
            b = 0 if b < 0 else 100 if b > 100 else b
            c = 0 if c < 0 else 100 if c > 100 else c
            d = total10 - a - b - c
            if not 0 <= d <= 100:
                a, b, c, d = _rebalance(a, b, c, d)
            q1, q2, q3, q4 = t[a], t[b], t[c], t[d]
            total = ""
        append(
            {
                "client_id": client,
                "clinician_id": clinician,
                "episode_id": episode,
                "administered_at": when,
                "measure": measure,
                "rater": rater,
                "age": age,
                "q1": q1,
                "q2": q2,
                "q3": q3,
                "q4": q4,
                "total": total,
                "source_key": key,
            }
        )

    return emit


def _rebalance(a: int, b: int, c: int, d: int) -> tuple[int, int, int, int]:
    """Fix a fourth item outside 0..100 tenths by moving the excess onto the other three."""
    items = [a, b, c]
    last = 0 if d < 0 else 100
    rest = d - last  # what still has to go onto (or come off) the first three
    for i in range(3):
        if rest > 0:
            room = 100 - items[i]
            step = room if room < rest else rest
        else:
            step = -items[i] if items[i] < -rest else rest
        items[i] += step
        rest -= step
    return items[0], items[1], items[2], last
