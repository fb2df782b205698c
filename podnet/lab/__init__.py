"""The lab: a Kubernetes network on one machine (nodes and pods are network namespaces)."""
