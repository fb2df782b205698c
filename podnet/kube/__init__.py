"""Talking to a Kubernetes API server (a real cluster's or the lab's) through the official client.

The networked side of :mod:`podnet.k8s`: that package holds the object model, the manifest validator and
the watch cache, and touches no network; this one reads (:mod:`.client`) and writes (:mod:`.objects`).
"""
