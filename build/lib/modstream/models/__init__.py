"""The model repository: installing weights (and, later, deploying and rolling back versions)."""
