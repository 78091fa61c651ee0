"""Ground floor: events, settings, topics and the adapters every service shares."""
