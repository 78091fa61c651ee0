"""Occlusion saliency, the pure part: which copies of an image to score, and what their scores say.

An occlusion map asks the model itself where it looked: the image is scored again with a
patch of it painted over by a neutral grey, once per patch position, and a label whose score
falls when a patch is hidden depended on what was under it. No gradients, no second model:
the copies go to the very versions that decided.

``Occlusion`` is a square grid of patch positions (``grid`` x ``grid``, one every
224/``grid`` px) whose patches may be wider than the step between them (``patch``); each
pixel's value is the mean score drop of the patches that cover it, so overlapping patches
give a smoother map at the cost of nothing but wider patches. Maps are kept at a resolution
of ``MAP_SIDE`` cells (16 px of the 224 px input each), fine enough for every grid here.
RISE-style random masks were measured against it and found nothing on the composite
(docs/benchmark.md, "Occlusion maps").
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SIDE = 224  # the preprocess model's output: what every pixel component sees
MAP_SIDE = 14  # the maps' cells per side (16 px each)
NEUTRAL = 128.0  # mid-grey in 0-255 pixels: the composite's own neutral, near zero after each graph's normalisation

Pixels = npt.NDArray[np.float32]  # [n, 3, 224, 224], 0-255
Map = npt.NDArray[np.float32]  # [MAP_SIDE, MAP_SIDE]


@dataclass(frozen=True)
class Occlusion:
    """``grid`` x ``grid`` patch positions, each patch ``patch`` px square, centred on its cell."""

    grid: int = 7
    patch: int = 48

    def __post_init__(self) -> None:
        if self.grid < 2 or SIDE % self.grid or (SIDE // self.grid) % (SIDE // MAP_SIDE):
            raise ValueError(f"a grid of {self.grid} does not divide {SIDE} px into whole map cells")
        if not SIDE // self.grid <= self.patch <= SIDE // 2:
            raise ValueError(f"a patch of {self.patch} px leaves gaps or hides half the image")

    @property
    def name(self) -> str:
        return f"occlusion-{self.grid}x{self.grid}-{self.patch}px"

    @property
    def copies(self) -> int:
        """Images scored per map: the image itself, then one per patch position."""
        return 1 + self.grid * self.grid

    def masks(self) -> npt.NDArray[np.bool_]:
        """``[grid * grid, 224, 224]``: True where each copy is painted over."""
        step = SIDE // self.grid
        masks = np.zeros((self.grid * self.grid, SIDE, SIDE), dtype=bool)
        for row in range(self.grid):
            for column in range(self.grid):
                y, x = row * step + step // 2, column * step + step // 2
                top, left = max(y - self.patch // 2, 0), max(x - self.patch // 2, 0)
                masks[row * self.grid + column, top : y + self.patch // 2, left : x + self.patch // 2] = True
        return masks


@dataclass(frozen=True)
class RandomMasks:
    """RISE-style masks: ``count`` copies, each hiding a random half of a ``cells`` x ``cells``
    grid of squares (drawn from ``seed``, so a map can be made again)."""

    count: int = 48
    cells: int = 7
    seed: int = 0

    @property
    def name(self) -> str:
        return f"random-{self.count}x{self.cells}x{self.cells}"

    @property
    def copies(self) -> int:
        return 1 + self.count

    def masks(self) -> npt.NDArray[np.bool_]:
        if SIDE % self.cells:
            raise ValueError(f"{self.cells} cells do not divide {SIDE} px")
        hidden = np.random.default_rng(self.seed).random((self.count, self.cells, self.cells)) < 0.5
        size = SIDE // self.cells
        return hidden.repeat(size, axis=1).repeat(size, axis=2)


Masking = Occlusion | RandomMasks


def occluded(pixels: Pixels, masks: npt.NDArray[np.bool_]) -> Pixels:
    """The image (``[1, 3, 224, 224]``) followed by one copy per mask, painted over with grey."""
    if pixels.shape != (1, 3, SIDE, SIDE):
        raise ValueError(f"pixels are [1, 3, {SIDE}, {SIDE}], not {list(pixels.shape)}")
    copies = np.repeat(pixels, len(masks) + 1, axis=0)
    copies[1:][np.broadcast_to(masks[:, None], (len(masks), 3, SIDE, SIDE))] = NEUTRAL
    return copies.astype(np.float32, copy=False)


def drop_maps(scores: npt.NDArray[np.float32], masks: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Each label's map from the scores of the image (row 0) and its copies (one row per mask):
    ``[labels, MAP_SIDE, MAP_SIDE]``, each cell the mean fall of the label's score over the copies
    that hid it (negative where hiding it raised the score)."""
    if len(scores) != len(masks) + 1:
        raise ValueError(f"{len(scores)} rows of scores for the image and {len(masks)} copies")
    drops = scores[0][None, :] - scores[1:]  # [copies, labels]
    cells = _cells(masks)  # [copies, MAP_SIDE * MAP_SIDE]: share of each cell each copy hid
    covered = cells.sum(axis=0)
    per_cell = (cells.T @ drops) / np.maximum(covered, 1e-9)[:, None]  # [cells, labels]
    return np.asarray(per_cell.T.reshape(-1, MAP_SIDE, MAP_SIDE), dtype=np.float32)


def _cells(masks: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    size = SIDE // MAP_SIDE
    shares = masks.reshape(len(masks), MAP_SIDE, size, MAP_SIDE, size).mean(axis=(2, 4))
    return np.asarray(shares.reshape(len(masks), -1), dtype=np.float32)


def mass_share(drop_map: Map, region: npt.NDArray[np.bool_]) -> float:
    """The share of a map's positive mass (where hiding lowered the score) inside ``region``, a
    ``[224, 224]`` pixel mask; 0 when hiding lowered the score nowhere."""
    positive = np.clip(drop_map, 0, None).repeat(SIDE // MAP_SIDE, 0).repeat(SIDE // MAP_SIDE, 1)
    total = float(positive.sum())
    return float(positive[region].sum()) / total if total > 0 else 0.0


def box_region(box: tuple[float, float, float, float]) -> npt.NDArray[np.bool_]:
    """A ``[224, 224]`` mask of a box given as x0, y0, x1, y1 fractions of the image (the image is
    stretched to 224 x 224 by the preprocess model, so fractions keep their place)."""
    x0, y0, x1, y1 = (round(v * SIDE) for v in box)
    region = np.zeros((SIDE, SIDE), dtype=bool)
    region[y0:y1, x0:x1] = True
    return region
