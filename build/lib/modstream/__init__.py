"""modstream: streaming image moderation."""
