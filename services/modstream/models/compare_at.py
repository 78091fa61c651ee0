"""The comparison's default score for a new label, apart from the comparison (``compare``), so
that the CLI can offer it as a default without loading numpy and the archive readers."""

DEFAULT_AT = 0.5
"""The score from which a new label counts as given, when none is asked for."""
