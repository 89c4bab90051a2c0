"""Product pictures for the embedded demo dataset, drawn with Pillow.

Each picture shows one object whose silhouette depends on its category (also named in
the title) and whose colour and surface pattern appear nowhere but in the pixels. The
object is drawn at twice the output size and downsampled so edges are smooth, then a
seeded jitter (position, scale, shade) and a faint pixel noise make every file unique.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Hues far apart (0, 30, 51, 130, 220, 275 degrees) so any image encoder separates them.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (205, 45, 45),
    "orange": (240, 135, 30),
    "yellow": (235, 205, 40),
    "green": (50, 160, 75),
    "blue": (45, 95, 210),
    "purple": (135, 65, 180),
}
PATTERNS = ("solid", "stripes", "dots")

_SUPERSAMPLE = 2
_COLOUR_JITTER = 10  # per channel; keeps each hue well inside its palette neighbourhood
_NOISE_SIGMA = 2.5

# A box in unit coordinates: (x0, y0, x1, y1), origin at the top left.
Box = tuple[float, float, float, float]
Point = Callable[[float, float], tuple[float, float]]


def _mug(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.ellipse([p(0.55, 0.38), p(0.82, 0.68)], outline=255, width=round(0.06 * px))
    draw.rounded_rectangle([p(0.24, 0.28), p(0.64, 0.80)], radius=0.05 * px, fill=255)


def _lamp(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.polygon([p(0.36, 0.14), p(0.64, 0.14), p(0.78, 0.44), p(0.22, 0.44)], fill=255)
    draw.rectangle([p(0.47, 0.44), p(0.53, 0.76)], fill=255)
    draw.ellipse([p(0.30, 0.72), p(0.70, 0.86)], fill=255)


def _vase(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.ellipse([p(0.28, 0.38), p(0.72, 0.88)], fill=255)
    draw.rectangle([p(0.42, 0.18), p(0.58, 0.50)], fill=255)
    draw.ellipse([p(0.36, 0.12), p(0.64, 0.22)], fill=255)


def _cushion(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.rounded_rectangle([p(0.18, 0.24), p(0.82, 0.76)], radius=0.14 * px, fill=255)
    for cx, cy in ((0.18, 0.24), (0.82, 0.24), (0.18, 0.76), (0.82, 0.76)):
        draw.ellipse([p(cx - 0.05, cy - 0.05), p(cx + 0.05, cy + 0.05)], fill=255)


def _scarf(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.polygon([p(0.12, 0.34), p(0.26, 0.20), p(0.88, 0.62), p(0.74, 0.76)], fill=255)
    for k in range(5):  # fringe at both ends
        t = 0.04 + 0.04 * k
        draw.line([p(0.12 + t * 0.9, 0.34 - t), p(0.04 + t * 0.9, 0.28 - t)], fill=255,
                  width=max(1, round(0.02 * px)))
        draw.line([p(0.74 + t, 0.76 - t * 0.9), p(0.80 + t, 0.86 - t * 0.9)], fill=255,
                  width=max(1, round(0.02 * px)))


def _bowl(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.pieslice([p(0.12, 0.12), p(0.88, 0.78)], start=0, end=180, fill=255)
    draw.rectangle([p(0.38, 0.76), p(0.62, 0.84)], fill=255)


def _clock(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.ellipse([p(0.18, 0.18), p(0.82, 0.82)], fill=255)


def _bottle(draw: ImageDraw.ImageDraw, p: Point, px: float) -> None:
    draw.rounded_rectangle([p(0.34, 0.32), p(0.66, 0.88)], radius=0.06 * px, fill=255)
    draw.polygon([p(0.44, 0.20), p(0.56, 0.20), p(0.66, 0.34), p(0.34, 0.34)], fill=255)


SILHOUETTES: dict[str, Callable[[ImageDraw.ImageDraw, Point, float], None]] = {
    "mug": _mug, "lamp": _lamp, "vase": _vase, "cushion": _cushion,
    "scarf": _scarf, "bowl": _bowl, "clock": _clock, "bottle": _bottle,
}


def _shade(rgb: np.ndarray, factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or lighter toward white (factor > 1); the hue stays put."""
    out = rgb * factor if factor <= 1 else rgb + (255 - rgb) * (factor - 1)
    return tuple(int(v) for v in np.clip(np.round(out), 0, 255))


def _surface(side: int, rgb: np.ndarray, pattern: str, rng: np.random.Generator) -> Image.Image:
    """The object's paint: its colour, with stripes or dots in shades of the same hue."""
    layer = Image.new("RGB", (side, side), _shade(rgb, 1.0))
    draw = ImageDraw.Draw(layer)
    if pattern == "stripes":
        period = int(rng.integers(side // 10, side // 7))
        phase = int(rng.integers(0, period))
        dark = _shade(rgb, 0.6)
        vertical = bool(rng.integers(0, 2))
        width = period // 2 - 1
        for k in range(phase - period, side, period):
            box = [k, 0, k + width, side] if vertical else [0, k, side, k + width]
            draw.rectangle(box, fill=dark)
    elif pattern == "dots":
        step = int(rng.integers(side // 9, side // 6))
        radius = max(2, step // 4)
        light = _shade(rgb, 1.5)
        ox, oy = (int(v) for v in rng.integers(0, step, size=2))
        for y in range(oy - step, side + step, step):
            for x in range(ox - step, side + step, step):
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=light)
    elif pattern != "solid":
        raise ValueError(f"unknown pattern {pattern!r}")
    return layer


def draw_item(category: str, colour: str, pattern: str, size: int,
              rng: np.random.Generator) -> Image.Image:
    """One ``size`` x ``size`` RGB picture of a ``colour`` ``category`` with ``pattern``."""
    side = size * _SUPERSAMPLE
    scale = float(rng.uniform(0.88, 1.04)) * side
    dx, dy = (float(v) * side for v in rng.uniform(-0.05, 0.05, size=2))
    offset = (side - scale) / 2

    def p(x: float, y: float) -> tuple[float, float]:
        return (offset + dx + x * scale, offset + dy + y * scale)

    mask = Image.new("L", (side, side), 0)
    SILHOUETTES[category](ImageDraw.Draw(mask), p, scale)
    rgb = np.asarray(PALETTE[colour], dtype=np.float64)
    rgb = np.clip(rgb + rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=3), 0, 255)
    background = Image.new("RGB", (side, side), tuple(int(v) for v in rng.integers(232, 250,
                                                                                   size=3)))
    image = Image.composite(_surface(side, rgb, pattern, rng), background, mask)
    if category == "clock":  # hands in neutral grey: they carry no colour
        draw = ImageDraw.Draw(image)
        width = max(2, round(0.03 * scale))
        draw.line([p(0.5, 0.5), p(0.5, 0.28)], fill=(45, 45, 45), width=width)
        draw.line([p(0.5, 0.5), p(0.66, 0.58)], fill=(45, 45, 45), width=width)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float64)  # (H, W, 3)
    pixels = pixels + rng.normal(0.0, _NOISE_SIGMA, size=pixels.shape)
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")


def write_images(
    folder: Path, item_ids: list[str], categories: list[str], colours: list[str],
    patterns: list[str], size: int, seed: int,
) -> None:
    """Write ``folder/<item_id>.png`` for every item.

    Each picture draws from its own generator, keyed by (seed, item index), so one
    item's picture never depends on how many others were drawn before it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for idx, item_id in enumerate(item_ids):
        rng = np.random.default_rng([seed, 0xDE30, 99, idx])
        image = draw_item(categories[idx], colours[idx], patterns[idx], size, rng)
        image.save(folder / f"{item_id}.png", format="PNG", optimize=False)


def dominant_colour(image: Image.Image) -> str | None:
    """The palette colour nearest in hue to most saturated pixels of ``image``.

    Used by the tests (and handy in notebooks) to show the colour lives in the pixels.
    """
    hsv = np.asarray(image.convert("RGB").convert("HSV"), dtype=np.float64)  # (H, W, 3)
    keep = (hsv[..., 1] > 90) & (hsv[..., 2] > 60)
    if not keep.any():
        return None
    hues = hsv[..., 0][keep] * (360.0 / 255.0)
    names = list(PALETTE)
    ref = np.array([_hue(PALETTE[n]) for n in names])
    diff = np.abs(hues[:, None] - ref[None, :])
    diff = np.minimum(diff, 360.0 - diff)  # hue is circular
    votes = np.bincount(diff.argmin(axis=1), minlength=len(names))
    return names[int(votes.argmax())]



def _hue(rgb: tuple[int, int, int]) -> float:
    """Hue in degrees, 0..360."""
    return 360.0 * colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))[0]
