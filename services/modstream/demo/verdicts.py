"""The demo's own reviewer: verdicts on some of the run's jobs, given through the dashboard's
JSON API as any reviewer's tool would, so the quality loop has truth to measure against.

Every sample photo is harmless, so its true verdict is known: approve, with no label. Only
some jobs are answered; the rest wait in the dashboard for the person running the demo.
"""

from collections.abc import Mapping

import httpx

NOTE = "seeded by modstream demo: the sample photos are harmless"


async def seed_verdicts(dashboard_url: str, token: str, jobs: Mapping[str, str], share: float) -> int:
    """Approve ``share`` of ``jobs`` (event id -> queue), claiming them queue by queue; jobs
    of other runs that come first are handed back untouched. Returns the verdicts given."""
    wanted: dict[str, int] = {}
    for queue in jobs.values():
        wanted[queue] = wanted.get(queue, 0) + 1
    given = 0
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=dashboard_url, headers=headers, timeout=30) as api:
        for queue, total in sorted(wanted.items()):
            target, skipped = int(total * share), []
            while target > 0:
                claimed = await api.post(f"/api/queues/{queue}/claim")
                if claimed.status_code == 204:
                    break
                claimed.raise_for_status()
                job_id = claimed.json()["job"]["job_id"]
                if job_id not in jobs:
                    skipped.append(job_id)
                    continue
                verdict = {"verdict": "approve", "labels": [], "note": NOTE}
                (await api.post(f"/api/jobs/{job_id}/verdict", json=verdict)).raise_for_status()
                given, target = given + 1, target - 1
            for job_id in skipped:
                await api.post(f"/api/jobs/{job_id}/skip")
    return given
