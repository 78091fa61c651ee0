"""Bank signal types: the interface and registry (``base``), and the types banks hold (the
images' hashes, and the phrases of text banks).

To add a type: a module here with its ``SignalType`` subclass (``base`` says what each
method does; ``exact`` and ``pdq`` are the examples), and one ``register`` line below.
Its values travel in the ``signals`` mapping of entries and image hashes; banks, files,
the HTTP API and the pipeline take it from the registry.
"""

from modstream.bank.signals.base import (
    Comparison,
    ExactIndex,
    LinearIndex,
    Query,
    SignalIndex,
    SignalType,
    entry_values,
    get,
    hash_image,
    names,
    queries,
    record_fields,
    register,
    types,
    unregister,
)
from modstream.bank.signals.exact import ExactHash
from modstream.bank.signals.pdq import PdqSignal
from modstream.bank.signals.text import TEXT, TextIndex, TextSignal

__all__ = [
    "TEXT",
    "Comparison",
    "ExactIndex",
    "LinearIndex",
    "Query",
    "SignalIndex",
    "SignalType",
    "TextIndex",
    "entry_values",
    "get",
    "hash_image",
    "names",
    "queries",
    "record_fields",
    "register",
    "types",
    "unregister",
]

# The order files, answers and derived entry ids list them in.
register(PdqSignal())
register(ExactHash("md5", 32, preference=1))
register(ExactHash("sha256", 64, preference=2))
register(TextSignal())
