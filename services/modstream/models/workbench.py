"""What every model change works on: the classifier in the model repository, with Triton's
model control open beside it."""

from collections.abc import Iterator
from contextlib import contextmanager

from modstream.core.settings import Settings
from modstream.models.control import TritonControl
from modstream.models.repository import Repository


class NoSuchModel(LookupError):
    """The model repository has no such classifier."""


@contextmanager
def open_model(settings: Settings, name: str) -> Iterator[tuple[Repository, TritonControl]]:
    repository = Repository(settings.model_repository, name)
    if not repository.config.is_file():
        raise NoSuchModel(f"there is no model {name!r} in {settings.model_repository}")
    triton = TritonControl(settings.triton_http)
    try:
        yield repository, triton
    finally:
        triton.close()
