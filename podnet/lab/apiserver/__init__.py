"""The lab's API server: the Kubernetes REST subset podnet needs, objects kept in SQLite.

Layers, outermost first: :mod:`.app` (HTTP, FastAPI/uvicorn, loopback only) → :mod:`.api` (routing, verbs,
Status errors; no sockets) → :mod:`.store` (SQLite objects, the global resourceVersion and the event log).
"""
