"""Statements of reasons: built from restrictions, published, submitted to the DSA Transparency Database."""
