"""Collectors: one module per kind of source; ``http`` is the client they all share.

``Collector`` says what the pipeline needs of a kind, ours or a plugin's. This module imports
nothing at run time, so ``import monitor`` can offer it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from monitor.collectors.http import HttpClient
    from monitor.model import Cursor, Fetch


@runtime_checkable
class Collector(Protocol):
    """A source kind: ``Options`` validates its keys in a source file; ``collect`` turns the
    cursor it returned last time (None at first) into a Fetch, or raises SourceError."""

    Options: ClassVar[type[BaseModel]]
    name: str

    def __init__(self, name: str, options: Any, http: HttpClient) -> None: ...

    def collect(self, cursor: Cursor | None) -> Fetch: ...
