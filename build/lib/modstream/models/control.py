"""Triton's model-control API (explicit mode) over HTTP: load, and what is ready."""

import time

import httpx


class TritonControlError(RuntimeError):
    pass


class TritonControl:
    def __init__(self, http_address: str, timeout: float = 120.0) -> None:
        self._client = httpx.Client(base_url=f"http://{http_address}", timeout=timeout)

    def load(self, model: str) -> None:
        """(Re)load the model with its current config; Triton swaps versions without failing requests."""
        response = self._client.post(f"/v2/repository/models/{model}/load")
        if response.status_code != 200:
            raise TritonControlError(_error_of(response))

    def unload(self, model: str) -> None:
        response = self._client.post(f"/v2/repository/models/{model}/unload")
        if response.status_code != 200:
            raise TritonControlError(_error_of(response))

    def index(self) -> list[dict[str, str]]:
        """Every model and version Triton knows, with its state (READY, UNAVAILABLE, …) and reason."""
        response = self._client.post("/v2/repository/index", json={})
        response.raise_for_status()
        return [{k: str(v) for k, v in entry.items()} for entry in response.json()]

    def ready_versions(self, model: str) -> set[int]:
        return {int(e["version"]) for e in self.index() if e.get("name") == model and e.get("state") == "READY"}

    def wait_ready(self, model: str, version: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if version in self.ready_versions(model):
                return
            time.sleep(0.25)
        raise TritonControlError(f"{model} version {version} was not ready after {timeout:.0f} s")

    def close(self) -> None:
        self._client.close()


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text
