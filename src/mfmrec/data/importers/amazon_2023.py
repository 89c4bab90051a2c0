"""The Amazon Reviews 2023 release (McAuley Lab): its metadata fields and images.

Reviews (JSON Lines): ``rating``, ``title``, ``text``, ``images``, ``asin``,
``parent_asin``, ``user_id``, ``timestamp`` (milliseconds), ``helpful_vote``,
``verified_purchase``. Items are keyed by ``parent_asin``, the 2023 convention (one
item per product, whatever its colour or size variant); the field mapping itself is
:data:`~mfmrec.data.importers.records.REVIEWS_2023`.

Metadata (JSON Lines): ``parent_asin``, ``title``, ``main_category``, ``categories``,
``images`` (a list of ``{"thumb", "large", "hi_res", "variant"}``), ``features``,
``description``, ``details``, ``store``, ``price``, ... This module maps one record to
the importer's attributes and picks its image URL.
"""

from __future__ import annotations

import re

_PRICE = re.compile(r"^\$?\s*(\d[\d,]*(?:\.\d+)?)$")
IMAGE_SIZES = ("large", "hi_res", "thumb")


def is_meta_2023(obj: dict) -> bool:
    """A 2023 metadata record has ``parent_asin`` and no ``asin``."""
    return "parent_asin" in obj and "asin" not in obj


def price(value) -> float | None:
    """A number, or a string such as ``"$1,299.00"``; anything else is no price."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _PRICE.match(value.strip()) if isinstance(value, str) else None
    return float(match.group(1).replace(",", "")) if match else None


def image_url_2023(images) -> str | None:
    """The URL of the ``MAIN`` image first (else the first one), ``large`` preferred."""
    if not isinstance(images, list):
        return None
    entries = [x for x in images if isinstance(x, dict)]
    entries.sort(key=lambda x: x.get("variant") != "MAIN")  # stable: MAIN first
    for entry in entries:
        for size in IMAGE_SIZES:
            url = entry.get(size)
            if isinstance(url, str) and url.strip():
                return url.strip()
    return None


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def attributes_2023(obj: dict) -> dict:
    """Attributes of one 2023 metadata record (empty values left out).

    ``brand``: ``details["Brand"]``, else ``store``; ``categories``: the ``categories``
    path, else ``[main_category]``; ``price``; ``image_url`` (:func:`image_url_2023`).
    """
    details = obj.get("details") if isinstance(obj.get("details"), dict) else {}
    brand = details.get("Brand")
    if not isinstance(brand, str) or not brand.strip():
        brand = obj.get("store") if isinstance(obj.get("store"), str) else None
    main = obj.get("main_category")
    categories = _strings(obj.get("categories")) or ([main] if isinstance(main, str) and main
                                                      else [])
    attrs = {"brand": brand.strip() if brand else None,
             "categories": list(dict.fromkeys(categories)) or None,
             "main_category": main if isinstance(main, str) and main else None,
             "price": price(obj.get("price")), "image_url": image_url_2023(obj.get("images"))}
    return {k: v for k, v in attrs.items() if v}
