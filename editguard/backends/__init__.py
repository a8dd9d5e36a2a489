"""Scoring backends: one protocol (``protocol``), its kinds in one table (``table.BACKENDS``): in process
(``inprocess``), a running engine and vLLM servers editguard starts (``served``)."""

from editguard.backends.protocol import Backend, BackendError, Backends
from editguard.backends.table import BACKENDS, BackendKind, backend_kind

__all__ = ["BACKENDS", "Backend", "BackendError", "BackendKind", "Backends", "backend_kind"]
