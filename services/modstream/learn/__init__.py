"""Learning new labels from reviewers: examples from the archive, heads fitted on embeddings."""
