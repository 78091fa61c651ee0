"""Decision policy: versioned per-tenant policies, the decision rule, and live reloading."""
