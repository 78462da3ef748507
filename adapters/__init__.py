"""Built-in fit-sync adapters (installed as ``fit_adapters``)."""
