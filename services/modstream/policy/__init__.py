"""Decision policy: from label scores to allow, review or block. Pure logic, no I/O but loading its file."""
