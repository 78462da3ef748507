"""Charts and reports that clinicians and supervisors look at (``fit report``).

Two layers, kept apart so the clinical content can be tested without drawing anything:

- **data preparation** (pure functions over scored administrations and agency statistics, no
  I/O, no clock, no plotting library): :mod:`.client_data` decides which points, lines, bands,
  cutoffs and flags go on a client's page; :mod:`.clinic_data` gathers the agency statistics and
  the distribution of change for the clinic report;
- **rendering** (needs the optional extra ``pip install 'fit-sync[reports]'``: matplotlib and
  jinja2): :mod:`.charts` and :mod:`.clinic_charts` draw inline SVG charts with matplotlib's
  Agg/SVG backends, :mod:`.html` fills the jinja2 templates (autoescaped) into self-contained
  HTML, :mod:`.browser` turns that HTML into PNG or PDF with headless Chromium, and
  :mod:`.output` writes files readable by the owner only.

Importing this package imports neither matplotlib nor jinja2; :func:`.deps.require_reports`
checks for them and raises a :class:`fit_core.errors.ConfigError` (exit 3) naming the extra.
"""

from __future__ import annotations

__all__: list[str] = []
