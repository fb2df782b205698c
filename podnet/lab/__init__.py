"""The lab: a multi-node Kubernetes network on one machine, made of network namespaces."""
