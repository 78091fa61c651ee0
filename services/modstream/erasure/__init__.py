"""Erasure (GDPR Art. 17): everything the system holds of an upload, found and removed, with a receipt."""
