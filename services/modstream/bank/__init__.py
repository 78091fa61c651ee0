"""Hash banks: known content matched by PDQ and exact hashes."""
