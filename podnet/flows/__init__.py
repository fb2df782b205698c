"""Flows: kernel decisions decoded into Hubble-shaped records, stored, filtered, exported and counted."""
