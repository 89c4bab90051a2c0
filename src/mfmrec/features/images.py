"""Image loading and preprocessing with PIL and numpy (no torchvision).

Every encoder describes its preprocessing as an :class:`ImagePreprocess`, which is also
written into the feature store so a reader knows exactly how features were made.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mfmrec.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize the shorter side to ``size``, center-crop ``crop``, then ``(x*rescale-mean)/std``.

    ``mean``/``std`` are per RGB channel, in the units left after ``rescale`` (CLIP works
    in [0, 1]; TensorFlow's EfficientNet-Lite in raw 0..255 pixels with 127/128).
    """

    size: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1.0 / 255.0
    resample: str = "bicubic"

    def __post_init__(self) -> None:
        if self.size < 1 or self.crop < 1 or self.crop > self.size:
            raise ValueError(f"size={self.size}, crop={self.crop}: need 1 <= crop <= size")
        if self.resample not in _RESAMPLE:
            raise ValueError(f"resample: expected one of {sorted(_RESAMPLE)}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 channels and std > 0")

    def describe(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def one(self, image: Image.Image) -> np.ndarray:
        """One RGB image -> (3, crop, crop) float32."""
        w, h = image.size
        scale = self.size / min(w, h)
        new = (max(self.size, round(w * scale)), max(self.size, round(h * scale)))
        if new != (w, h):
            image = image.resize(new, _RESAMPLE[self.resample])
        left = (new[0] - self.crop) // 2
        top = (new[1] - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        x = np.asarray(image, dtype=np.float32) * np.float32(self.rescale)  # (H, W, 3)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """A list of RGB images -> (B, 3, crop, crop) float32."""
        return torch.from_numpy(np.stack([self.one(im) for im in images]))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent areas on white (product shots are cut out on white)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def load_image(path: str | os.PathLike) -> Image.Image | None:
    """Decode an image file fully into RGB; ``None`` when it is missing or unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb(im)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def index_folder(folder: str | os.PathLike) -> dict[str, Path]:
    """``{file stem: path}`` for the image files of a folder (``<external id>.<ext>``).

    When two files share a stem (``a.jpg`` and ``a.png``) the first in
    ``IMAGE_EXTENSIONS`` order wins, so the choice does not depend on the file system.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--images: {folder} is not a directory")
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    best: dict[str, tuple[int, Path]] = {}
    for entry in os.scandir(folder):
        ext = os.path.splitext(entry.name)[1].lower()
        if ext not in rank or not entry.is_file():
            continue
        stem = entry.name[: -len(ext)]
        if stem not in best or rank[ext] < best[stem][0]:
            best[stem] = (rank[ext], Path(entry.path).resolve())
    return {stem: path for stem, (_, path) in best.items()}


def file_stem(item_id: str) -> str:
    """A file-name-safe stem for an item id: the id itself when it is safe (ASINs, numbers),
    else its safe characters plus a short hash, so two ids never share a file."""
    if _SAFE.match(item_id):
        return item_id
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:100].lstrip(".") or "item"
    return f"{clean}-{hashlib.sha1(item_id.encode()).hexdigest()[:10]}"


def images_from_folder(folder: str | os.PathLike, item_ids: list[str]) -> list[Path | None]:
    """Per item, ``folder/<item id>.<ext>`` (or its :func:`file_stem`) when it exists."""
    index = index_folder(folder)
    return [index.get(item_id) or index.get(file_stem(item_id)) for item_id in item_ids]
