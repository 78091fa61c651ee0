"""The quality loop: how well automatic decisions match reviewers' verdicts, and what to change."""
