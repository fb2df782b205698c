"""podnet: Kubernetes pod networking that really moves, filters and records packets."""

__version__ = "0.1.0"
