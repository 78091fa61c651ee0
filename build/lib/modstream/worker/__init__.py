"""The stream worker: the Faust app and the per-event pipeline (fetch, infer, decide, publish)."""
