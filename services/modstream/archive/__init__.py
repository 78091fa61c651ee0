"""The decision archive: decisions, verdicts and shadow scores as Parquet on the object store."""
