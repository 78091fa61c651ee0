"""Audit sample rates raised while a label drifts: written by the drift monitor (in the
archiver), read by every worker, which applies the higher of it and the policy's own rate.

One Redis hash, tenant -> rate; a tenant is in it only while some label of it drifts.
"""

import redis.asyncio as aioredis

AUDIT_RATES = "drift:audit-rate"


async def raised_audit_rates(client: "aioredis.Redis") -> dict[str, float]:
    found = await client.hgetall(AUDIT_RATES)  # type: ignore[misc]
    return {k.decode(): float(v) for k, v in found.items()}
