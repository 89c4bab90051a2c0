"""Download item images from URLs, robustly: a failing URL never stops the run.

Each URL gets a bounded number of attempts with exponential back-off for transient
failures (timeouts, dropped connections, HTTP 429/5xx); permanent ones (404, a wrong
content type, a body over the size limit, bytes Pillow cannot decode, a non-http URL)
fail at once. Only ``http``/``https`` URLs are fetched, because metadata is untrusted
and ``file://`` would read local files. A file is written (atomically) only after
Pillow decoded it fully, so a file on disk is always a valid image, which is what makes
resuming safe: existing valid files are never fetched again.
"""

from __future__ import annotations

import http.client
import io
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mfmrec.config import check
from mfmrec.features.images import file_stem, index_folder
from mfmrec.io import atomic_file

_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DownloadConfig:
    """How images are fetched."""

    workers: int = 8  # threads fetching at once
    timeout: float = 10.0  # seconds allowed for connecting and for each read
    total_timeout: float = 60.0  # seconds allowed for one whole file (slow trickles)
    retries: int = 3  # extra attempts after a transient failure
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    max_bytes: int = 10_000_000  # larger bodies are refused
    user_agent: str = "mfmrec/0.1 (item image ingestion)"

    def __post_init__(self) -> None:
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        check(self.timeout > 0, "timeout", f"must be > 0, got {self.timeout}")
        check(self.total_timeout >= self.timeout, "total_timeout", "must be >= timeout")
        check(self.retries >= 0, "retries", f"must be >= 0, got {self.retries}")
        check(self.backoff >= 0, "backoff", f"must be >= 0, got {self.backoff}")
        check(self.max_bytes > 0, "max_bytes", f"must be > 0, got {self.max_bytes}")


@dataclass(frozen=True)
class Outcome:
    item: int
    url: str
    status: str  # "downloaded" | "cached" | "failed"
    path: str | None = None
    error: str | None = None
    attempts: int = 0


class Transient(Exception):
    """Worth another attempt."""


class Permanent(Exception):
    """Retrying cannot help."""


def validate_image(data: bytes) -> str:
    """The file extension for ``data`` once Pillow has decoded it fully, else Permanent."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.verify()  # structure and checksums
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # every pixel: catches truncated files verify lets through
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError,
            Image.DecompressionBombError) as exc:
        raise Permanent(f"not a decodable image ({type(exc).__name__}: {exc})") from None
    if fmt not in _EXT:
        raise Permanent(f"unsupported image format {fmt}")
    return _EXT[fmt]


def _read_body(resp, cfg: DownloadConfig, started: float) -> bytes:
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > cfg.max_bytes:
        raise Permanent(f"too large: Content-Length {length} > {cfg.max_bytes} bytes")
    parts, size = [], 0
    while chunk := resp.read(_CHUNK):
        size += len(chunk)
        if size > cfg.max_bytes:
            raise Permanent(f"too large: more than {cfg.max_bytes} bytes")
        if time.monotonic() - started > cfg.total_timeout:
            raise Transient(f"slower than {cfg.total_timeout}s in total")
        parts.append(chunk)
    return b"".join(parts)


def fetch(url: str, cfg: DownloadConfig) -> bytes:
    """The body of an image URL, or Transient/Permanent with a one-line reason."""
    if not url.lower().startswith(("http://", "https://")):
        raise Permanent(f"unsupported URL (only http/https): {url[:80]}")
    request = urllib.request.Request(url, headers={"User-Agent": cfg.user_agent})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as resp:
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
                raise Permanent(f"wrong content type {ctype!r}")
            return _read_body(resp, cfg, started)
    except urllib.error.HTTPError as exc:
        kind = Transient if exc.code == 429 or exc.code >= 500 else Permanent
        raise kind(f"HTTP {exc.code}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from None
    except urllib.error.URLError as exc:
        raise Transient(f"unreachable: {exc.reason}") from None
    except ValueError as exc:  # malformed URL
        raise Permanent(f"bad URL: {exc}") from None


def _cached(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        validate_image(path.read_bytes())
    except (Permanent, OSError):
        return False
    return True


def download_one(item: int, item_id: str, url: str, out_dir: Path, cfg: DownloadConfig,
                 existing: Path | None = None) -> Outcome:
    """Fetch one image into ``out_dir/<item id>.<ext>`` unless a valid copy is there."""
    if _cached(existing):
        return Outcome(item, url, "cached", str(existing))
    error, attempt = "", 0
    for attempt in range(1, cfg.retries + 2):
        try:
            data = fetch(url, cfg)
            ext = validate_image(data)
        except Transient as exc:
            error = str(exc)
            if attempt <= cfg.retries:
                time.sleep(cfg.backoff * 2 ** (attempt - 1))
            continue
        except Permanent as exc:
            error = str(exc)
            break
        path = out_dir / f"{file_stem(item_id)}.{ext}"
        with atomic_file(path, "wb") as fh:
            fh.write(data)
        if existing is not None and existing != path:  # an invalid leftover of another type
            existing.unlink(missing_ok=True)
        return Outcome(item, url, "downloaded", str(path), attempts=attempt)
    return Outcome(item, url, "failed", error=error, attempts=attempt)


def download_images(jobs: list[tuple[int, str, str]], out_dir: str | Path,
                    cfg: DownloadConfig | None = None, quiet: bool = False) -> list[Outcome]:
    """Fetch ``(item, item_id, url)`` jobs with a bounded thread pool; one Outcome each."""
    cfg = cfg or DownloadConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    present = index_folder(out_dir)
    outcomes: list[Outcome] = []
    columns = (TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn())
    with Progress(*columns, disable=quiet) as bar, \
            ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        task = bar.add_task("images", total=len(jobs), failed=0)
        futures = [pool.submit(download_one, item, item_id, url, out_dir, cfg,
                               present.get(file_stem(item_id)))
                   for item, item_id, url in jobs]
        for fut in as_completed(futures):
            outcomes.append(fut.result())
            failed = sum(o.status == "failed" for o in outcomes)
            bar.update(task, advance=1, failed=failed)
    return sorted(outcomes, key=lambda o: o.item)


def summarize(outcomes: list[Outcome], item_ids: list[str]) -> dict:
    """Counts and the failures (item id, URL, reason, attempts) for the JSON report."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("downloaded", "cached", "failed")}
    failures = [dict(asdict(o), item_id=item_ids[o.item]) for o in outcomes
                if o.status == "failed"]
    for f in failures:
        f.pop("path")
        f.pop("status")
    return {"requested": len(outcomes), **counts, "failures": failures}
