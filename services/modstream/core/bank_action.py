"""What a match against a bank does, apart from the wire contract (``events``), so that the CLI
can offer it as an option without loading the event models (pydantic)."""

from enum import StrEnum


class BankAction(StrEnum):
    """What a match against a bank does: block, send to a review queue, or allow (known good)."""

    BLOCK = "block"
    REVIEW = "review"
    ALLOW = "allow"
