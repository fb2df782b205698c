"""Kubernetes object model, manifest loading and validation (pure: no kernel, no network)."""
