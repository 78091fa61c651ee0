"""The guided first run: the whole pipeline on the local stack with sample photos."""
