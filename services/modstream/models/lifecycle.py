"""Deploy and roll back the serving classifier while traffic flows.

A deploy checks the candidate first, writes it as the next version, pins it, and asks
Triton to load it; Triton keeps serving the old version until the new one is ready.
If Triton cannot load it, the previous pin is restored and reloaded, the new folder
is removed, and the reason is reported: the serving version never changes to a
broken one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modstream.models.candidate import check_candidate, read_label_file
from modstream.models.control import TritonControl, TritonControlError
from modstream.models.repository import Repository, Version

Say = Callable[[str], None]


class DeployFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Switch:
    previous: int
    serving: int


def deploy(repository: Repository, triton: TritonControl, onnx_file: Path, labels_file: Path, say: Say) -> Switch:
    labels = read_label_file(labels_file)
    say(f"checking {onnx_file.name} against {len(labels)} labels")
    check_candidate(onnx_file, labels)
    previous = repository.serving()
    version = repository.add_version(onnx_file, labels)
    say(f"written as version {version.number}")
    try:
        _serve(repository, triton, version.number, say)
    except DeployFailed:
        repository.remove_version(version.number)
        raise
    return Switch(previous=previous, serving=version.number)


def rollback(repository: Repository, triton: TritonControl, say: Say, to: int | None = None) -> Switch:
    current = repository.serving()
    numbers = [v.number for v in repository.versions()]
    if to is None:
        older = [n for n in numbers if n < current]
        if not older:
            raise DeployFailed(f"version {current} is the oldest; there is nothing to roll back to")
        to = older[-1]
    if to not in numbers:
        raise DeployFailed(f"there is no version {to} (versions: {numbers})")
    _serve(repository, triton, to, say)
    return Switch(previous=current, serving=to)


def _serve(repository: Repository, triton: TritonControl, number: int, say: Say) -> None:
    previous = repository.serving()
    repository.pin(number)
    say(f"asking Triton to load {repository.model} version {number}")
    try:
        triton.load(repository.model)
        triton.wait_ready(repository.model, number)
    except TritonControlError as exc:
        say(f"Triton refused version {number}; restoring version {previous}")
        repository.pin(previous)
        triton.load(repository.model)
        raise DeployFailed(f"Triton could not load {repository.model} version {number}: {exc}") from exc
    say(f"version {number} is serving")


@dataclass(frozen=True)
class VersionRow:
    version: int
    labels: list[str]
    triton: str
    serving: bool


def describe(repository: Repository, triton: TritonControl | None) -> list[VersionRow]:
    """Every version on disk, with Triton's view of it and which one serves."""
    states: dict[int, str] = {}
    if triton is not None:
        for entry in triton.index():
            if entry.get("name") == repository.model and entry.get("version"):
                states[int(entry["version"])] = entry.get("state", "") + (
                    f" ({entry['reason']})" if entry.get("reason") else ""
                )
    serving = repository.serving()
    return [_row(v, states, serving) for v in repository.versions()]


def _row(version: Version, states: dict[int, str], serving: int) -> VersionRow:
    return VersionRow(
        version.number, version.labels, states.get(version.number, "not loaded"), version.number == serving
    )
