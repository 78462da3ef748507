"""The HTML templates (jinja2, autoescaped) and the inline CSS of the reports.

Kept as Python strings so they ship inside the package without package data. Everything a page
needs is inline: CSS here, charts as inline SVG; a Content-Security-Policy forbids loading
anything else (no scripts, fonts, images or styles from anywhere), so a report opens the same
on an offline clinic PC.
"""

from __future__ import annotations

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

BASE_CSS = """
:root { --fg:#1a1a1a; --muted:#505050; --line:#d4d4d4; --soft:#f3f5f7;
  --green:#009E73; --orange:#E69F00; --red:#D55E00; --grey:#8C8C8C; --blue:#0072B2; }
* { box-sizing: border-box; }
html { font-size: 18px; -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans",
    Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 14px 18px 32px; }
.kicker { font-size: .78rem; text-transform: uppercase; letter-spacing: .06em;
  color: var(--muted); }
h1 { font-size: 1.7rem; margin: .1em 0 .1em; line-height: 1.2; }
h1 .sub { font-weight: normal; color: var(--muted); font-size: 1.15rem; white-space: nowrap; }
.meta { margin: .15em 0 .7em; color: var(--muted); }
h2 { font-size: 1.22rem; margin: 1.1em 0 .3em; padding-bottom: .15em;
  border-bottom: 2px solid var(--line); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; }
.card { background: var(--soft); border-radius: 8px; padding: 7px 9px 7px 11px;
  border-left: 7px solid var(--grey); }
.card .label { font-size: .8rem; color: var(--muted); }
.card .value { font-size: 1.55rem; font-weight: 700; line-height: 1.2; }
.card .value.words { font-size: .95rem; padding: .15em 0; letter-spacing: -.01em; }
.card .note { font-size: .85rem; }
.st-green { border-left-color: var(--green); } .st-orange { border-left-color: var(--orange); }
.st-red { border-left-color: var(--red); } .st-blue { border-left-color: var(--blue); }
.glyph { font-weight: 700; }
.glyph.st-green { color: var(--green); } .glyph.st-orange { color: #B07800; }
.glyph.st-red { color: var(--red); } .glyph.st-grey { color: var(--grey); }
.chart svg { width: 100%; height: auto; display: block; }
.chart .narrow, .chart .print { display: none; }
.howto { font-size: .88rem; color: #333; margin: .35em 0 0; }
.legend { list-style: none; padding: 0; margin: .35em 0 0; display: flex; flex-wrap: wrap;
  gap: .3em 1.3em; font-size: .88rem; }
.legend li { display: flex; align-items: center; gap: .45em; }
.sw { display: inline-block; flex: none; }
.sw.zone { width: 1.7em; height: 1em; border-radius: 2px; }
.sw.line { width: 2.3em; height: 0; border-top: 3px solid; position: relative; }
.sw.line.dashed, .sw.line.dashdot { border-top-style: dashed; }
.sw.line.dotted { border-top-style: dotted; }
.sw.line .mk { position: absolute; left: 50%; top: -.7em; transform: translateX(-50%);
  font-size: 1em; line-height: 1; }
.sw.glyph { width: 1.7em; text-align: center; font-size: 1.1em; line-height: 1;
  text-shadow: 0 0 1px #1a1a1a; }
.sw.tag { border: 1.5px solid #1a1a1a; border-radius: .4em; padding: 0 .4em;
  font-weight: 700; font-size: .85em; line-height: 1.3; background: #F0C05A; }
.note-box { background: var(--soft); padding: .5em .8em; border-radius: 6px; font-size: .9rem; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
th, td { padding: .3em .55em; border-bottom: 1px solid var(--line); text-align: right;
  white-space: nowrap; }
thead th { border-bottom: 2px solid #999; vertical-align: bottom; white-space: normal; }
th[scope=row], td.name { text-align: left; }
tbody th[scope=row] { position: sticky; left: 0; background: #fff; font-weight: 600; }
.flags ol { list-style: none; padding: 0; margin: 0; }
.flag { display: grid; grid-template-columns: 2.6em 1fr; gap: .1em .5em; padding: .45em 0;
  border-bottom: 1px solid var(--line); }
.flag p { margin: .1em 0; }
.flag .what { font-weight: 600; }
.key { display: inline-block; min-width: 2em; text-align: center; font-weight: 700;
  border: 1.5px solid #1a1a1a; border-radius: .45em; padding: .05em .3em; height: fit-content; }
.key.sev-alert { background: var(--red); color: #fff; border-radius: 0; }
.key.sev-warning { background: #F0C05A; }
.key.sev-info { background: #fff; }
.sev { font-weight: 700; text-transform: uppercase; font-size: .72rem; letter-spacing: .05em;
  border: 1px solid currentColor; border-radius: 3px; padding: 0 .3em; }
.sev-word-alert { color: #A33D00; } .sev-word-warning { color: #7A5600; }
.sev-word-info { color: #444; }
code { font-size: .85em; background: var(--soft); padding: 0 .25em; border-radius: 3px; }
details { font-size: .88rem; margin-top: .15em; }
details ul { margin: .2em 0; padding-left: 1.2em; }
.small-badge { display: inline-block; font-size: .72rem; font-weight: 700; letter-spacing: .04em;
  text-transform: uppercase; border: 1.5px dashed #7a5600; color: #7a5600; border-radius: 4px;
  padding: 0 .3em; margin-left: .3em; }
tr.small td, tr.small th { background: #fff8e6; }
tr.all th, tr.all td { font-weight: 700; background: var(--soft); }
footer { margin-top: 1.8em; font-size: .85rem; color: var(--muted);
  border-top: 2px solid var(--line); padding-top: .6em; }
footer p { margin: .25em 0; }
.copyright { color: var(--fg); font-weight: 600; }
.print-only { display: none; }
td.low { font-weight: 700; color: #A33D00; }
.table-note { font-size: .8rem; color: var(--muted); margin: .2em 0 0; }
@media (max-width: 600px) {
  html { font-size: 17px; }
  main { padding: 12px 12px 24px; }
  h1 { font-size: 1.4rem; }
  h1 .sub { display: block; font-size: 1rem; }
  h1 .sub .dot { display: none; }
  .cards { grid-template-columns: 1fr 1fr 1fr; gap: 6px; }
  .card { padding: 5px 7px; border-left-width: 5px; }
  .card .label { font-size: .72rem; line-height: 1.25; }
  .card .value { font-size: 1.25rem; }
  .card .value.words { font-size: .95rem; }
  .card .note { font-size: .72rem; line-height: 1.3; }
  .legend { font-size: .82rem; gap: .2em 1em; }
  .chart .wide { display: none; }
  .chart .narrow { display: block; }
}
@page { margin: 10mm; }
@media print {
  html { font-size: 8pt; }
  body { -webkit-print-color-adjust: exact; print-color-adjust: exact; line-height: 1.3; }
  main { max-width: none; padding: 0; }
  .chart .wide, .chart .narrow { display: none; }
  .chart .print { display: block; }
  .clinic-report .chart .wide { display: block; }
  .howto, .noprint, details, .flag code, .flag .meta, .note-box { display: none; }
  h1 { font-size: 14pt; }
  h2 { font-size: 10pt; margin: .5em 0 .2em; break-after: avoid; }
  .cards { grid-template-columns: repeat(6, 1fr); gap: 4px; }
  .card { padding: 3px 6px; border-left-width: 5px; }
  .card .value { font-size: 12pt; }
  .flag { padding: .15em 0; grid-template-columns: 2.4em 1fr; }
  .scroll { overflow: visible; }
  th, td { padding: .12em .35em; }
  footer { margin-top: .6em; padding-top: .3em; }
  tr, .flag, .chart, .cards { break-inside: avoid; }
  .legend { font-size: 7.2pt; gap: 0 1.1em; margin-top: .1em; }
  .meta { margin: 0 0 .4em; }
}
"""

CLIENT_CSS = """
.data table { width: 100%; }
.data td, .data th { text-align: right; }
.data thead th { white-space: normal; }
@media print {
  .lower { display: grid; grid-template-columns: minmax(0, 57fr) minmax(0, 43fr); gap: 0 4mm;
    align-items: start;
    grid-template-areas: "flags data" "foot data"; grid-template-rows: auto 1fr; }
  .lower .flags { grid-area: flags; } .lower .data { grid-area: data; }
  .lower footer { grid-area: foot; margin-top: 1em; }
  .flags { font-size: 7.6pt; }
  .data table { width: 100%; font-size: 6.8pt; }
  .data th, .data td { padding: .1em .2em; }
  .data td:last-child { white-space: normal; }
  .ors-chart svg { max-height: 62mm; }
  .data tr.older { display: none; }
  .print-only { display: block; }
}
"""
CLIENT_SRS_CSS = """
@media print { .alliance-chart svg { max-height: 37mm; } }
"""

CLINIC_CSS = """
.clinic-report .cards { grid-template-columns: repeat(auto-fit, minmax(118px, 1fr)); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 820px) { .grid2 { grid-template-columns: 1fr; } }
.clinic-report table { width: 100%; }
.clinic-report thead th { white-space: normal; }
@media (max-width: 600px) {
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack th, table.stack td {
    display: block; width: 100%; }
  table.stack tr { border-bottom: 2px solid #999; padding: .3em 0; }
  table.stack th[scope=row] { position: static; border: none; font-size: 1rem; }
  table.stack td { display: flex; justify-content: space-between; gap: 1em; border: none;
    padding: .1em .2em; white-space: normal; text-align: right; }
  table.stack td::before { content: attr(data-label); text-align: left; color: var(--muted); }
}
@media print { .grid2 { grid-template-columns: 1fr 1fr; } .clinic-chart svg { max-height: 80mm; } }
"""

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<meta name="robots" content="noindex, nofollow">
<meta name="generator" content="fit-sync {{ version }}">
<title>{{ doc_title }}</title>
<style>{{ css }}</style>
</head>
"""

_FOOTER = """<footer>
{% for line in copyright %}<p class="copyright">{{ line }}</p>
{% endfor %}<p>fit-sync shows scores only: no item wording, instructions or forms. Administering the
measures needs a licence from the rights holders.</p>
<p>Generated {{ generated|longdate }} by fit-sync {{ version }}. Confidential clinical
information: keep it as you keep clinical records.</p>
</footer>"""

_LEGEND = """{% macro legend(items) -%}
<ul class="legend">{% for it in items %}<li>
{%- if it.kind == 'zone' %}<span class="sw zone" style="background:{{ it.colour }}"></span>
{%- elif it.kind == 'flag' %}<span class="sw tag">1</span>
{%- elif it.kind == 'marker' %}<span class="sw glyph" style="color:{{ it.colour }}">
{{- it.glyph }}</span>
{%- else %}<span class="sw line {{ it.dash }}" style="border-top-color:{{ it.colour }}">
{%- if it.marker %}<span class="mk" style="color:{{ it.colour }}">{{ it.glyph }}</span>
{%- endif %}</span>{% endif %} {{ it.label }}</li>
{% endfor %}</ul>
{%- endmacro %}
"""

CLIENT_TEMPLATE = (
    _LEGEND
    + _HEAD
    + """<body>
<main class="client-report">
<header>
<div class="kicker">fit-sync · client report · confidential</div>
<h1>Client {{ page.client_label }}
  <span class="sub"><span class="dot">· </span>{{ page.episode_label }}{% if page.n_episodes > 1 %}
  ({{ page.episode_number }} of {{ page.n_episodes }}){% endif %}</span></h1>
<p class="meta">{{ page.n_sessions }} session{{ '' if page.n_sessions == 1 else 's' }},
{{ page.first_date|longdate }} – {{ page.last_date|longdate }}{% if page.clinician_id %}
· clinician {{ page.clinician_id }}{% endif %}</p>
</header>

<section class="cards" aria-label="Summary">
{% for card in cards %}<div class="card {{ card.css }}">
<div class="label">{{ card.label }}</div>
<div class="value{% if card.words %} words{% endif %}">{% if card.glyph %}<span
 class="glyph {{ card.css }}" aria-hidden="true">{{ card.glyph }}</span> {% endif %}
{{- card.value }}</div>
{% if card.note %}<div class="note">{{ card.note }}</div>{% endif %}
</div>
{% endfor %}</section>

{% if page.ors %}<section class="ors" aria-labelledby="h-ors">
<h2 id="h-ors">{{ page.ors.title_measure }} by session</h2>
<div class="chart ors-chart"><div class="wide">{{ svgs.ors_wide }}</div>
<div class="narrow">{{ svgs.ors_narrow }}</div>
<div class="print">{{ svgs.ors_print }}</div></div>
{{ legend(legends.ors) }}
<p class="howto">Higher is better. Dashed line: the clinical cutoff for the client's age band
(below it is the clinical range). Blue zone: intake ± the reliable change; a score outside it is
a reliable change.{% if page.ors.band %} Green band: the range expected at each session for
clients with this intake; markers show the status (circle on track, triangle below the range,
cross below the severe line; squares where the model expects nothing, by reliable
change).{% endif %}
Numbered tags above the chart: one per flag, at the session where it holds now, with a bracket
back to the session where it began; listed below.</p>
<p class="note-box">{{ page.model_note }}</p>
</section>{% else %}<p class="note-box">No {{ 'ORS-family' }} administrations in this
episode.</p>{% endif %}

{% if page.srs %}<section class="alliance" aria-labelledby="h-alliance">
<h2 id="h-alliance">{{ page.srs.title_measure }} (alliance) by session</h2>
<div class="chart alliance-chart"><div class="wide">{{ svgs.alliance_wide }}</div>
<div class="narrow">{{ svgs.alliance_narrow }}</div>
<div class="print">{{ svgs.alliance_print }}</div></div>
{{ legend(legends.alliance) }}
<p class="howto">Below {{ srs_cutoff }} (shaded) or a fall since the last session: ask what to
change about the work together. A low first rating that is discussed and rises is good news.</p>
</section>{% endif %}

{% if page.srs_items %}<section class="srs-items noprint" aria-labelledby="h-srs-items">
<h2 id="h-srs-items">{{ page.srs_items.measure }} by domain</h2>
<div class="scroll"><table>
<thead><tr><th scope="col">Session</th><th scope="col">Date</th>
{% for label in page.srs_items.labels %}<th scope="col">{{ label }}</th>{% endfor %}</tr></thead>
<tbody>
{% for k, d, items in page.srs_items.rows %}<tr><th scope="row">{{ k }}</th>
<td>{{ d|shortdate }}</td>
{%- for v in items %}<td{% if v < page.srs_items.low %} class="low"{% endif %}>
{%- if v < page.srs_items.low %}▼ {% endif %}{{ v|score }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
<p class="howto">Each domain 0–10, by its short label (the form's wording is not shown). ▼ below
{{ page.srs_items.low|score }}: check in about that part of the session.</p>
</section>{% endif %}

<div class="lower">
<section class="flags" aria-labelledby="h-flags">
<h2 id="h-flags">Flags ({{ n_flags }} open or acknowledged{% if page.flags|length != n_flags %},
{{ page.flags|length }} rule{{ '' if page.flags|length == 1 else 's' }}{% endif %})</h2>
{% if page.flags %}<ol>
{% for g in page.flags %}<li class="flag" id="flag-{{ g.number }}">
<span class="key sev-{{ g.severity }}">{{ g.number }}</span>
<div><p><span class="sev sev-word-{{ g.severity }}">{{ g.severity }}</span>
<span class="what">{{ titles.get(g.rule_id, g.rule_id) }}</span> <code>{{ g.rule_id }}</code>
· session{{ '' if g.sessions|length == 1 else 's' }} {{ g.sessions|ranges }}
{% if g.acknowledged %}· acknowledged{% endif %}</p>
<p>{{ g.latest.message }}{% if g.notes|length > 1 %} <span class="meta">(session
{{ g.latest.session }}{% if g.latest.rater != 'client' %}, {{ g.latest.rater }}{% endif %})</span>
{%- endif %}</p>
{% if g.notes|length > 1 %}<details><summary>All {{ g.notes|length }} messages</summary><ul>
{% for n in g.notes %}<li>Session {{ n.session }} ({{ n.date|shortdate }}
{%- if n.rater != 'client' %}, {{ n.rater }}{% endif %}): {{ n.message }}</li>
{% endfor %}</ul></details>{% endif %}</div>
</li>
{% endfor %}</ol>{% else %}<p>No open flags in this episode.</p>{% endif %}
</section>

<section class="data" aria-labelledby="h-data">
<h2 id="h-data">Scores by session</h2>
<div class="scroll"><table>
<thead><tr>{% for h in table.columns %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table.rows %}<tr{% if table.print_hidden[loop.index0] %} class="older"{% endif %}>
<th scope="row">{{ row[0] }}</th>
{%- for cell in row[1:] %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if table.print_note %}<p class="print-only table-note">{{ table.print_note }}</p>{% endif %}
</section>
"""
    + _FOOTER
    + """
</div>
</main>
</body>
</html>
"""
)

CLINIC_TEMPLATE = (
    _HEAD
    + """<body>
<main class="clinic-report">
<header>
<div class="kicker">fit-sync · clinic report · for supervision and quality work</div>
<h1>Outcomes by {{ by_label }}</h1>
<p class="meta">{{ overall.n_episodes }} episodes of {{ overall.n_clients }} clients
{% if since %}starting on or after {{ since|longdate }}{% else %}(all data){% endif %}
· as of {{ as_of|longdate }} · outcome figures of {{ population }} · groups under
{{ min_n }} episodes are marked <span class="small-badge">small</span> and shown, never hidden;
their effect sizes are withheld.</p>
{% if no_groups %}<p class="note-box">No episode has a {{ by_label }} recorded: only the whole
agency is shown.</p>{% endif %}
</header>

<section class="cards" aria-label="Summary">
{% for card in cards %}<div class="card {{ card.css }}">
<div class="label">{{ card.label }}</div>
<div class="value">{{ card.value }}</div>
{% if card.note %}<div class="note">{{ card.note }}</div>{% endif %}
</div>
{% endfor %}</section>

<section aria-labelledby="h-classes">
<h2 id="h-classes">Outcome classes per {{ by_label }}</h2>
<div class="chart clinic-chart"><div class="wide">{{ svgs.classes_wide }}</div>
<div class="narrow">{{ svgs.classes_narrow }}</div></div>
<p class="howto">Share of client-rated {{ population }} in each class, by change from intake
to the latest ORS (Jacobson &amp; Truax). The literature's range for reliable improvement is
about 65–74 %, deterioration 2–11 %: figures for closed cases{% if not ended_only %}, so compare
them with the ended-only report (<code>--ended-only</code>){% endif %}.</p>
</section>

<section aria-labelledby="h-es">
<h2 id="h-es">Effect sizes with 95% confidence intervals</h2>
<div class="chart clinic-chart"><div class="wide">{{ svgs.effect_wide }}</div>
<div class="narrow">{{ svgs.effect_narrow }}</div></div>
<p class="howto">Pre–post effect size (mean change / SD of intake) with its 95% interval
(Becker 1988). A group needs at least {{ min_n }} episodes with two or more ORS for an effect
size: below that the estimate is withheld (a handful of episodes can give d = 14 with an
interval from 3 to 26) and the chart says so. Wide intervals still mean few episodes.</p>
</section>

<div class="grid2">
<section aria-labelledby="h-change">
<h2 id="h-change">Distribution of change</h2>
<div class="chart clinic-chart">{{ svgs.change_wide }}</div>
<p class="howto">Change from intake to the latest ORS per episode, all {{ by_label }}s.
Beyond ±{{ rc_text }} points is a reliable change.</p>
</section>
<section aria-labelledby="h-alliance">
<h2 id="h-alliance">Alliance (mean SRS)</h2>
<div class="chart clinic-chart">{{ svgs.alliance_wide }}</div>
<p class="howto">Mean of all SRS totals per {{ by_label }}; below 36 calls for a look at how
alliance feedback is asked for and used.</p>
</section>
</div>

<section aria-labelledby="h-spread">
<h2 id="h-spread">Change per {{ by_label }}</h2>
<div class="chart clinic-chart"><div class="wide">{{ svgs.spread_wide }}</div>
<div class="narrow">{{ svgs.spread_narrow }}</div></div>
<p class="howto">Each dot is one episode; the box spans the middle half, the bar is the
median. The shaded zone is no reliable change (±{{ rc_text }}).</p>
</section>

<section aria-labelledby="h-dropout">
<h2 id="h-dropout">Endings and dropout</h2>
<div class="chart clinic-chart"><div class="wide">{{ svgs.endings_wide }}</div>
<div class="narrow">{{ svgs.endings_narrow }}</div></div>
<p class="howto">Ended episodes only. {% if overall.n_ended_attendance %}Dropout: attendance
data show the client missed the last appointment(s) and did not come back ({{
overall.n_ended_attendance }} of {{ overall.n_ended }} ended episodes have attendance data).
{% else %}There is no attendance data, so dropout cannot be seen: an episode that ended without
reaching the target is not counted as a dropout, and one with a single ORS has an unknown
target. {% endif %}Target: a reliable improvement from intake.</p>
</section>

{% for table in tables %}<section class="table-{{ table.key }}"
 aria-labelledby="h-table-{{ loop.index }}">
<h2 id="h-table-{{ loop.index }}">{{ table.title }}</h2>
<div class="scroll"><table class="stack">
<thead><tr>{% for h in table.columns %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table.rows %}<tr class="{{ row.css }}"><th scope="row">{{ row.name }}
{%- if row.small %}<span class="small-badge" title="fewer than {{ min_n }} episodes">small</span>
{%- endif %}</th>{% for cell in row.cells %}<td data-label="{{ table.columns[loop.index] }}">
{{- cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% if table.note %}<p class="howto">{{ table.note }}</p>{% endif %}
</section>
{% endfor %}<p class="howto">"—": not enough data.</p>
"""
    + _FOOTER
    + """
</main>
</body>
</html>
"""
)
