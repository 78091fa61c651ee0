"""``python -m modstream.cli``: how the stack supervisor and the tests start the services."""

from modstream.cli import app

app()
