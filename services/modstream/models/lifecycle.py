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
from modstream.models.heads import EMBEDDING_FROM, HEADS, check_heads_candidate, heads_trained_elsewhere
from modstream.models.repository import Repository, Version

Say = Callable[[str], None]


class DeployFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Switch:
    previous: int
    serving: int


def add(repository: Repository, onnx_file: Path, labels_file: Path, say: Say) -> Version:
    """Check a candidate and write it as the next version; it does not serve yet."""
    labels = read_label_file(labels_file)
    say(f"checking {onnx_file.name} against {len(labels)} labels")
    check_candidate(onnx_file, labels, repository.input_shape())
    if repository.model == HEADS:
        check_heads_candidate(repository.root, onnx_file, labels)
    version = repository.add_version(onnx_file, labels)
    say(f"written as version {version.number}")
    return version


def deploy(repository: Repository, triton: TritonControl, onnx_file: Path, labels_file: Path, say: Say) -> Switch:
    version = add(repository, onnx_file, labels_file, say)
    try:
        return serve(repository, triton, version.number, say)
    except DeployFailed:
        repository.remove_version(version.number)
        raise


def rollback(repository: Repository, triton: TritonControl, say: Say, to: int | None = None) -> Switch:
    if to is None:
        current = repository.serving()
        older = [v.number for v in repository.versions() if v.number < current]
        if not older:
            raise DeployFailed(f"version {current} is the oldest; there is nothing to roll back to")
        to = older[-1]
    return serve(repository, triton, to, say)


def serve(repository: Repository, triton: TritonControl, number: int, say: Say) -> Switch:
    """Make version ``number`` serve; if Triton cannot load it, the previous one goes on."""
    numbers = [v.number for v in repository.versions()]
    if number not in numbers:
        raise DeployFailed(f"there is no version {number} (versions: {numbers})")
    if repository.model == EMBEDDING_FROM:
        _check_heads_follow(repository.root, number)
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
    return Switch(previous=previous, serving=number)


def _check_heads_follow(root: Path, number: int) -> None:
    """Learned heads read the embedding's features: another embedding version would make their
    scores meaningless, so it does not serve while heads trained on another one do."""
    elsewhere = heads_trained_elsewhere(root, f"{EMBEDDING_FROM}:{number}")
    if elsewhere:
        named = ", ".join(f"{label} ({model})" for label, model in sorted(elsewhere.items()))
        raise DeployFailed(
            f"the serving heads were trained on another embedding model: {named}; serve heads without them "
            f"first (modstream model rollback --name heads --to 1), then train them again on {EMBEDDING_FROM}:{number}"
        )


@dataclass(frozen=True)
class VersionRow:
    version: int
    labels: list[str]
    triton: str
    serving: bool
    shadow: bool


def describe(repository: Repository, index: list[dict[str, str]]) -> list[VersionRow]:
    """Every version on disk, with Triton's view of it (from its repository index) and its role."""
    serving, shadowed = repository.serving(), repository.shadowed()
    states = _states(index, repository.model)
    shadow_state = _states(index, repository.shadow().model).get(shadowed or 0, "not loaded")
    return [
        VersionRow(
            v.number,
            v.labels,
            shadow_state if v.number == shadowed else states.get(v.number, "not loaded"),
            serving=v.number == serving,
            shadow=v.number == shadowed,
        )
        for v in repository.versions()
    ]


def other_models(repository: Repository, index: list[dict[str, str]]) -> list[dict[str, str]]:
    """The entries of Triton's repository index that are neither the classifier nor its shadow."""
    return [e for e in index if e.get("name") not in (repository.model, repository.shadow().model)]


def _states(index: list[dict[str, str]], model: str) -> dict[int, str]:
    return {
        int(entry["version"]): state_of(entry) for entry in index if entry.get("name") == model and entry.get("version")
    }


def state_of(entry: dict[str, str]) -> str:
    """An entry of Triton's repository index as its state, with the reason when it has one."""
    return entry.get("state", "") + (f" ({entry['reason']})" if entry.get("reason") else "")
