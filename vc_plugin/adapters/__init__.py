"""Adapters: the embedded and the production implementation of each service. May import the core only."""
