"""Run a candidate version beside the serving one, on the same images, deciding nothing.

A shadow is two extra entries in the Triton repository: ``<classifier>_shadow`` (a copy
of the candidate version) and ``<ensemble>_shadow`` (the serving ensemble with that
classifier in place of the serving one, sharing its preprocess model). Separate names
keep the serving ensemble and its version pin untouched; workers find the shadow
ensemble by asking Triton whether it is ready, and write what it scores to the shadow
topic (see ``worker/shadow.py``). Stopping removes both entries.
"""

import re
import shutil
from pathlib import Path

from modstream.core.settings import SHADOW_SUFFIX as SUFFIX
from modstream.models.control import TritonControl, TritonControlError
from modstream.models.lifecycle import DeployFailed, Say, Switch, add, serve
from modstream.models.repository import Repository

_NAME = re.compile(r'^name: "[^"]*"$', re.MULTILINE)


def start_shadow(repository: Repository, triton: TritonControl, ensemble: str, version: int, say: Say) -> None:
    numbers = [v.number for v in repository.versions()]
    if version not in numbers:
        raise DeployFailed(f"there is no version {version} (versions: {numbers})")
    if version == repository.serving():
        raise DeployFailed(f"version {version} already serves; shadow a version that does not")
    if repository.shadowed() is not None:
        stop_shadow(repository, triton, ensemble, say)
    classifier = repository.shadow()
    _write_classifier(repository, classifier.folder, version)
    classifier.pin(version)
    _write_ensemble(repository.root, ensemble, repository.model)
    say(f"asking Triton to load {classifier.model} (version {version}) and {ensemble}{SUFFIX}")
    try:
        triton.load(classifier.model)
        triton.load(ensemble + SUFFIX)
        triton.wait_ready(ensemble + SUFFIX, 1)
    except TritonControlError as exc:
        stop_shadow(repository, triton, ensemble, say)
        raise DeployFailed(f"Triton could not load the shadow of version {version}: {exc}") from exc
    say(f"version {version} is shadowing version {repository.serving()}; workers pick it up within seconds")


def shadow_candidate(
    repository: Repository, triton: TritonControl, ensemble: str, onnx_file: Path, labels_file: Path, say: Say
) -> None:
    """Check a candidate, add it as the next version and shadow it; if it cannot shadow, it is removed."""
    version = add(repository, onnx_file, labels_file, say)
    try:
        start_shadow(repository, triton, ensemble, version.number, say)
    except DeployFailed:
        repository.remove_version(version.number)
        raise


def stop_shadow(repository: Repository, triton: TritonControl, ensemble: str, say: Say) -> None:
    classifier = repository.shadow()
    for name in (ensemble + SUFFIX, classifier.model):  # the ensemble first: it uses the classifier
        try:
            triton.unload(name)
        except TritonControlError as exc:
            say(f"Triton did not unload {name}: {exc}")
    shutil.rmtree(repository.root / (ensemble + SUFFIX), ignore_errors=True)
    shutil.rmtree(classifier.folder, ignore_errors=True)
    say("shadow stopped")


def _write_classifier(repository: Repository, target: Path, version: int) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copytree(repository.folder / str(version), target / str(version))
    config = _NAME.sub(f'name: "{target.name}"', repository.config.read_text())
    (target / "config.pbtxt").write_text(config)
    shared_labels = repository.folder / "labels.txt"  # SCORES' label_filename names it
    if shared_labels.is_file():
        shutil.copy(shared_labels, target / "labels.txt")


def _write_ensemble(root: Path, ensemble: str, classifier: str) -> None:
    target = root / (ensemble + SUFFIX)
    shutil.rmtree(target, ignore_errors=True)
    (target / "1").mkdir(parents=True)
    config = (root / ensemble / "config.pbtxt").read_text()
    config = _NAME.sub(f'name: "{ensemble}{SUFFIX}"', config)
    config = config.replace(f'model_name: "{classifier}"', f'model_name: "{classifier}{SUFFIX}"')
    (target / "config.pbtxt").write_text(config)


def promote(repository: Repository, triton: TritonControl, ensemble: str, say: Say) -> Switch:
    """Make the version under shadow serve, then stop the shadow."""
    version = repository.shadowed()
    if version is None:
        raise DeployFailed("no version is under shadow (start one with: modstream model shadow VERSION)")
    switch = serve(repository, triton, version, say)
    stop_shadow(repository, triton, ensemble, say)
    return switch
