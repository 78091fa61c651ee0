"""The names of the bank file formats, apart from their codecs (``formats``), so that the CLI
can offer them without loading the signal types."""

from enum import StrEnum


class Format(StrEnum):
    PLAIN = "plain"
    TE = "te"
    TE_CSV = "te-csv"
    HMA = "hma"
