"""The `fit` command (installed as ``fit_cli``)."""
