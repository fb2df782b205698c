"""The offline analyzer: questions about a set of manifests, answered from the compiled policy."""
