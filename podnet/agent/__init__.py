"""The node agent: endpoint registry, CNI service, HTTP API on a unix socket."""
