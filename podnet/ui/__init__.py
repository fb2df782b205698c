"""The web UI: a FastAPI app serving the policy editor's JSON API and its built front end (``ui/`` → ``static/``)."""
