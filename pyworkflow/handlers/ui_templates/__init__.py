"""The run viewer's pages (``pyworkflow/handlers/ui.py`` serves them): server-rendered HTML built
with the escaping helpers of ``html.py``, so every value that came from a run is text, never
markup."""
