"""Collectors: one module per kind of source; ``http`` is the client they all share."""
