"""fit-sync core: scoring, rules, hook specs, plugin manager, store and sync engine.

Importing this package has no side effects. The clinical logic is in pure functions:
:func:`fit_core.scoring.score_client`, the rules in :mod:`fit_core.rules`, measures in
:mod:`fit_core.measures`.
"""

__version__ = "0.1.0"
