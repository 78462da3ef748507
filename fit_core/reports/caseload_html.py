"""Caseload pages as self-contained HTML: the template, its CSS and the trend sparklines.

The same rules as every report (:mod:`.templates`): jinja2 with autoescaping, inline CSS, a
Content-Security-Policy that forbids loading anything, no scripts; the measures' copyright
lines in the footer. Sparklines are tiny inline SVGs drawn here (a polyline; no plotting
library), so a page of two hundred clients renders in a blink. Three layouts from one page:
a row per client on a desktop, a card per client on a phone, a compact list on paper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any

from .. import __version__
from ..measures import COPYRIGHT_LINES
from . import templates
from .caseload_data import ATTENTION, ATTENTION_STYLE, CaseloadClient, CaseloadPage
from .client_view import RC_WORDS, fmt_signed, fmt_total
from .style import STATUS_STYLE, STATUS_WORD

__all__ = ["CASELOAD_CSS", "render_caseload", "render_index", "sparkline_svg"]

SPARK_W, SPARK_H = 132, 40
_Y_MAX = 40.0


def sparkline_svg(
    series: Sequence[float],
    *,
    cutoff: float | None = None,
    rc_zone: tuple[float, float] | None = None,
    status: str | None = None,
    label: str = "ORS",
    width: int = SPARK_W,
    height: int = SPARK_H,
) -> str:
    """A small inline SVG of ORS totals by session on a fixed 0–40 scale (so clients compare):
    the intake ± RC zone, the cutoff (dashed), the line, the latest point in its status colour.
    """
    pad = 4.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def x(i: int) -> float:
        return pad + (inner_w * i / (len(series) - 1) if len(series) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return pad + inner_h * (1 - max(0.0, min(_Y_MAX, v)) / _Y_MAX)

    words = ", ".join(f"{v:g}" for v in series) or "no scores"
    parts = [
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)} by session: {escape(words)}">'
    ]
    parts.append(
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fff" '
        'stroke="#d4d4d4"/>'
    )
    if rc_zone is not None:
        top, bottom = y(rc_zone[1]), y(rc_zone[0])
        parts.append(
            f'<rect x="{pad}" y="{top:.1f}" width="{inner_w}" height="{bottom - top:.1f}" '
            'fill="#D6E4F0"/>'
        )
    if cutoff is not None:
        cy = y(cutoff)
        parts.append(
            f'<line x1="{pad}" y1="{cy:.1f}" x2="{width - pad}" y2="{cy:.1f}" stroke="#333" '
            'stroke-width="1" stroke-dasharray="3 2"/>'
        )
    if series:
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series))
        if len(series) > 1:
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="#0072B2" stroke-width="2" '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        colour = STATUS_STYLE.get(status or "", ("#0072B2",))[0]
        lx, ly = x(len(series) - 1), y(series[-1])
        parts.append(
            f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="3.6" fill="{colour}" stroke="#1a1a1a" '
            'stroke-width="0.8"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


CASELOAD_CSS = """
.caseload .nav { font-size: .9rem; margin: 0 0 .4em; }
.cards.attention .card { cursor: default; }
.card.att-red, li.client.att-red { border-left-color: var(--red); }
.card.att-orange, li.client.att-orange { border-left-color: var(--orange); }
.card.att-stale, li.client.att-stale { border-left-color: var(--blue); }
.card.att-green, li.client.att-green { border-left-color: var(--green); }
.glyph.att-red { color: var(--red); } .glyph.att-orange { color: #B07800; }
.glyph.att-stale { color: var(--blue); } .glyph.att-green { color: var(--green); }
.group h2 .n { color: var(--muted); font-weight: normal; }
ol.clients { list-style: none; margin: 0; padding: 0; }
li.client { display: grid; gap: .15em 1em; align-items: start;
  grid-template-columns: minmax(10em, 1.4fr) minmax(7.5em, 1fr) minmax(6.5em, .9fr)
    minmax(8em, 1fr) 132px;
  grid-template-areas: "who ors srs sess spark" "alerts alerts alerts alerts alerts";
  padding: .5em .6em .5em .8em; margin: 0 0 .5em; background: var(--soft);
  border-radius: 8px; border-left: 7px solid var(--grey); break-inside: avoid; }
li.client .who { grid-area: who; min-width: 0; }
li.client .ors { grid-area: ors; } li.client .srs { grid-area: srs; }
li.client .sess { grid-area: sess; } li.client .spark-box { grid-area: spark; }
li.client .alerts { grid-area: alerts; }
.who .name { font-weight: 700; font-size: 1.05rem; }
.who .why { display: block; font-size: .85rem; color: var(--muted); }
.num .k { display: block; font-size: .72rem; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); }
.num b { font-size: 1.2rem; font-variant-numeric: tabular-nums; }
.num .d { display: block; font-size: .8rem; color: #333; }
.spark-box svg { display: block; width: 132px; height: 40px; }
ul.alerts { list-style: none; margin: .2em 0 0; padding: 0; font-size: .88rem; }
ul.alerts li { padding: .15em 0; border-top: 1px solid var(--line); }
ul.alerts .meta { color: var(--muted); font-size: .8rem; white-space: nowrap; }
.ack { font-size: .72rem; border: 1px solid var(--muted); border-radius: 3px; padding: 0 .25em;
  color: var(--muted); }
.none { color: var(--muted); }
table.index td, table.index th { text-align: right; }
table.index td.name, table.index th.name { text-align: left; }
@media (max-width: 700px) {
  .cards.attention { grid-template-columns: 1fr 1fr; }
  li.client { grid-template-columns: 1fr 1fr;
    grid-template-areas: "who spark" "ors srs" "sess sess" "alerts alerts";
    border-left-width: 6px; padding: .5em .5em .5em .6em; }
  li.client .spark-box { justify-self: end; }
  .num b { font-size: 1.1rem; }
  .num.sess .k, .num.sess b, .num.sess .d { display: inline; }
  .num.sess b { margin: 0 .2em; }
}
@media print {
  .nav { display: none; }
  li.client { grid-template-columns: 10em 7em 6em 8em 132px 1fr;
    grid-template-areas: "who ors srs sess spark alerts"; padding: .2em .4em;
    margin: 0 0 .25em; border-left-width: 5px; }
  .num b { font-size: 10pt; } .who .name { font-size: 10pt; }
  ul.alerts { font-size: 7.5pt; margin: 0; }
  a { color: inherit; text-decoration: none; }
}
"""

_ROWS = """{% macro row(c) -%}
<li class="client att-{{ c.attention }}" data-attention="{{ c.attention }}"
 data-client="{{ c.label }}">
<div class="who"><span class="glyph att-{{ c.attention }}" aria-hidden="true">
{{- style[c.attention][2] }}</span>
{% if c.href %}<a class="name" href="{{ c.href }}">{{ c.label }}</a>{% else %}<span
 class="name">{{ c.label }}</span>{% endif %}
<span class="why">{{ style[c.attention][1] }}{% if c.reasons %}: {{ c.reasons|join(', ') }}
{%- endif %}</span></div>
<div class="num ors"><span class="k">Latest {{ c.ors_measure or 'ORS' }}</span>
{%- if c.ors_latest is not none %}<b>{{ total(c.ors_latest) }}</b>
<span class="d">{% if c.ors_change is not none %}{{ change(c.ors_change) }} since intake
{%- else %}intake{% endif %}{% if c.rc_class and c.rc_class != 'intake' %}
{{- ' · ' }}{{ rc_words.get(c.rc_class, c.rc_class) }}{% endif %}{% if c.status in status_words
and c.status != 'grey' %} · {{ status_words[c.status] }}{% endif %}</span>
{%- else %}<b>—</b><span class="d">no ORS</span>{% endif %}</div>
<div class="num srs"><span class="k">Latest {{ c.srs_measure or 'SRS' }}</span>
{%- if c.srs_latest is not none %}<b>{{ total(c.srs_latest) }}</b>
<span class="d">{% if c.srs_change is not none %}{{ change(c.srs_change) }} since first
{%- else %}first rating{% endif %}
{%- if c.srs_cutoff is not none and c.srs_latest < c.srs_cutoff %} · below {{
'%g'|format(c.srs_cutoff) }}{% endif %}</span>
{%- else %}<b>—</b><span class="d">no SRS</span>{% endif %}</div>
<div class="num sess"><span class="k">Sessions</span><b>{{ c.n_sessions }}</b>
<span class="d">last {{ c.last_date|shortdate }}
{%- if c.days_since > 0 %} ({{ c.days_since }} day{{ '' if c.days_since == 1 else 's' }} ago)
{%- elif c.days_since < 0 %} (in {{ -c.days_since }} day{{ '' if c.days_since == -1 else 's' }})
{%- else %} (today){% endif %}</span></div>
<div class="spark-box">{{ sparks[c.namespace ~ '/' ~ c.client_id] }}</div>
{% if c.alerts %}<ul class="alerts">
{% for a in c.alerts %}<li><span class="sev sev-word-{{ a.severity }}">{{ a.severity }}</span>
{% if a.show_title %}<b>{{ a.title }}</b>: {% endif %}{{ a.message }}
{%- if a.state == 'acknowledged' %} <span class="ack">acknowledged</span>{% endif %}
<span class="meta">#{{ a.id }}{% if a.session %}, session
{%- if a.first_session and a.first_session != a.session %}s {{ a.first_session }}–{{ a.session }}
{%- else %} {{ a.session }}{% endif %}{% endif %}</span></li>
{% endfor %}</ul>{% endif %}
</li>
{%- endmacro %}
"""

_FOOT = """<footer>
{% for line in copyright %}<p class="copyright">{{ line }}</p>
{% endfor %}<p>fit-sync shows scores only: no item wording, instructions or forms. Administering the
measures needs a licence from the rights holders.</p>
<p>Generated {{ generated|longdate }} by fit-sync {{ version }}. Confidential clinical
information: keep it as you keep clinical records.</p>
</footer>"""

CASELOAD_TEMPLATE = (
    _ROWS
    + templates._HEAD
    + """<body>
<main class="caseload">
<header>
<div class="kicker">fit-sync · caseload · confidential</div>
<p class="nav"><a href="index.html">All clinicians</a></p>
<h1>{{ heading }}</h1>
<p class="meta">{{ n }} active client{{ '' if n == 1 else 's' }} · as of {{ as_of|longdate }} ·
sorted by what needs attention · “no data lately”: no session for {{ stale_days }} days</p>
</header>
<section class="cards attention" aria-label="Summary">
{% for a in order %}<div class="card att-{{ a }}">
<div class="label">{{ style[a][0] }}</div>
<div class="value"><span class="glyph att-{{ a }}" aria-hidden="true">{{ style[a][2] }}</span>
{{ counts[a] }}</div></div>
{% endfor %}</section>
{% for a, clients in groups %}<section class="group" aria-labelledby="g-{{ a }}">
<h2 id="g-{{ a }}"><span class="glyph att-{{ a }}" aria-hidden="true">{{ style[a][2] }}</span>
{{ style[a][0] }} <span class="n">({{ clients|length }})</span></h2>
<ol class="clients">
{% for c in clients %}{{ row(c) }}
{% endfor %}</ol>
</section>
{% else %}<p class="none">No active clients.</p>
{% endfor %}
<p class="howto">Each client's latest episode. ORS: the latest total, its change since intake
and its class (a change of the reliable change or more is reliable); with a trajectory model,
whether it is on track. SRS: the latest alliance rating and its change since the first one.
Trend: ORS by session on a 0–40 scale, dashed line the clinical cutoff, blue band intake ± the
reliable change, the last point in its status colour. The client's name links to the full
report. Alerts are those that hold now (open or acknowledged).</p>
"""
    + _FOOT
    + """
</main>
</body>
</html>
"""
)

INDEX_TEMPLATE = (
    templates._HEAD
    + """<body>
<main class="caseload">
<header>
<div class="kicker">fit-sync · caseloads · confidential</div>
<h1>Caseloads</h1>
<p class="meta">{{ total }} active client{{ '' if total == 1 else 's' }} · as of
{{ as_of|longdate }}</p>
</header>
<div class="scroll"><table class="index">
<thead><tr><th scope="col" class="name">Clinician</th>{% for a in order %}<th scope="col">
<span class="glyph att-{{ a }}" aria-hidden="true">{{ style[a][2] }}</span> {{ style[a][0] }}
</th>{% endfor %}<th scope="col">Active</th></tr></thead>
<tbody>
{% for p in pages %}<tr><th scope="row" class="name"><a href="{{ p.href }}">{{ p.name }}</a></th>
{% for a in order %}<td>{{ p.counts[a] }}</td>{% endfor %}<td>{{ p.n }}</td></tr>
{% endfor %}</tbody></table></div>
"""
    + _FOOT
    + """
</main>
</body>
</html>
"""
)


def _safe(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # generated here; every outside value in it is escaped


def _common(generated: dt.date) -> dict[str, Any]:
    return {
        "csp": _safe(templates.CSP),
        "version": __version__,
        "css": _safe(templates.BASE_CSS + CASELOAD_CSS),
        "style": ATTENTION_STYLE,
        "order": ATTENTION,
        "copyright": COPYRIGHT_LINES,
        "generated": generated,
    }


def clinician_name(clinician_id: str | None) -> str:
    return f"clinician {clinician_id}" if clinician_id else "no clinician recorded"


def render_caseload(page: CaseloadPage, *, generated: dt.date) -> str:
    """One clinician's caseload as a self-contained HTML page."""
    from .html import environment

    tpl = environment().from_string(CASELOAD_TEMPLATE)
    sparks = {f"{c.namespace}/{c.client_id}": _safe(_spark(c)) for c in page.clients}
    who = clinician_name(page.clinician_id)
    return tpl.render(
        **_common(generated),
        doc_title=f"Caseload · {who}",
        heading=f"Caseload · {who}",
        n=len(page.clients),
        as_of=page.as_of,
        stale_days=page.stale_days,
        counts=page.counts,
        groups=page.groups(),
        sparks=sparks,
        total=fmt_total,
        change=_change,
        rc_words=RC_WORDS,
        status_words=STATUS_WORD,
    ).lstrip()


def _change(v: float) -> str:
    """``+2.5``, ``−1.0``; no change is ``±0``."""
    return "±0" if v == 0 else fmt_signed(v)


def _spark(c: CaseloadClient) -> str:
    return sparkline_svg(
        c.series,
        cutoff=c.cutoff,
        rc_zone=c.rc_zone,
        status=c.status,
        label=c.ors_measure or "ORS",
    )


def render_index(
    pages: Sequence[tuple[CaseloadPage, str]], *, as_of: dt.date, generated: dt.date
) -> str:
    """The list of caseload pages: (page, its file name) with each clinician's counts."""
    from .html import environment

    tpl = environment().from_string(INDEX_TEMPLATE)
    rows = [
        {
            "name": clinician_name(p.clinician_id),
            "href": href,
            "counts": p.counts,
            "n": len(p.clients),
        }
        for p, href in pages
    ]
    return tpl.render(
        **_common(generated),
        doc_title="Caseloads",
        pages=rows,
        total=sum(r["n"] for r in rows),
        as_of=as_of,
    ).lstrip()
