"""Human review: queues of uncertain decisions, reviewer verdicts, the audit log and the dashboard."""
