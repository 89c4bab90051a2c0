"""Image ingestion against a local HTTP server (127.0.0.1, a thread): never the internet."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from mfmrec.config import ConfigError
from mfmrec.data import RawDataset, load_dataset, write_dataset
from mfmrec.errors import DataError
from mfmrec.features.download import DownloadConfig, download_one
from mfmrec.features.ingest import image_urls_from_meta, ingest_images, url_of


def _jpeg(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "JPEG")
    return buf.getvalue()


GOOD = _jpeg()
# (status, content type, body, seconds to wait before answering)
ROUTES = {
    "/good.jpg": (200, "image/jpeg", GOOD, 0),
    "/png": (200, "image/png; charset=binary", None, 0),
    "/missing.jpg": (404, "text/html", b"not found", 0),
    "/slow.jpg": (200, "image/jpeg", GOOD, 1.5),
    "/huge.jpg": (200, "image/jpeg", GOOD + b"\0" * 5000, 0),
    "/page.html": (200, "text/html", b"<html>an error page</html>", 0),
    "/corrupt.jpg": (200, "image/jpeg", GOOD[:40], 0),
    "/flaky.jpg": (503, "text/plain", b"busy", 0),  # 503 once, then the image
}


class Handler(BaseHTTPRequestHandler):
    hits: Counter = Counter()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        Handler.hits[self.path] += 1
        status, ctype, body, wait = ROUTES.get(self.path, (404, "text/plain", b"?", 0))
        if self.path == "/png":
            buf = io.BytesIO()
            Image.new("RGB", (4, 4), (0, 0, 255)).save(buf, "PNG")
            body = buf.getvalue()
        if self.path == "/flaky.jpg" and Handler.hits[self.path] > 1:
            status, ctype, body = 200, "image/jpeg", GOOD
        time.sleep(wait)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may have given up (timeout test)

    def log_message(self, *args):
        return


@pytest.fixture
def server():
    Handler.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


CFG = DownloadConfig(workers=4, timeout=0.5, total_timeout=2.0, retries=2, backoff=0.01,
                     max_bytes=2000)


def _dataset(tmp_path: Path, names: list[str], base: str | None = None) -> Path:
    n = len(names)
    attrs = [{"image_url": f"{base}/{x}"} for x in names] if base else None
    raw = RawDataset(name="dl", user_ids=["U0", "U1"], item_ids=[f"A{i}" for i in range(n)],
                     sequences=[[0, 1, 2], [1, 2, 3]], item_attributes=attrs)
    return write_dataset(raw, tmp_path / "ds", num_negatives=1)


@pytest.mark.slow
def test_every_failure_kind_is_reported_and_none_aborts(server, tmp_path):
    names = ["good.jpg", "missing.jpg", "slow.jpg", "huge.jpg", "page.html", "corrupt.jpg",
             "flaky.jpg", "png"]
    root = _dataset(tmp_path, names, server)
    report = ingest_images(root, cfg=CFG, quiet=True)
    assert (report["downloaded"], report["failed"], report["cached"]) == (3, 5, 0)
    reasons = {f["item_id"]: f["error"] for f in report["failures"]}
    assert reasons["A1"] == "HTTP 404"
    assert "timed out" in reasons["A2"] or "Timeout" in reasons["A2"]
    assert "too large" in reasons["A3"]
    assert "wrong content type 'text/html'" in reasons["A4"]
    assert "not a decodable image" in reasons["A5"]
    attempts = {f["item_id"]: f["attempts"] for f in report["failures"]}
    assert attempts["A2"] == 3 and attempts["A1"] == 1  # retried only the transient one
    assert Handler.hits["/flaky.jpg"] == 2
    images = pq.read_table(root / "items.parquet").column("image").to_pylist()
    assert images == ["images/A0.jpg", None, None, None, None, None, "images/A6.jpg",
                      "images/A7.png"]
    ds = load_dataset(root)
    assert Image.open(ds.image_paths()[7]).size == (4, 4)
    saved = json.loads((root / "images" / "report.json").read_text())
    assert saved["failed"] == 5 and saved["items_with_image"] == 3


def test_rerun_skips_valid_files_and_refetches_broken_ones(server, tmp_path):
    root = _dataset(tmp_path, ["good.jpg", "png", "good.jpg", "missing.jpg"], server)
    ingest_images(root, cfg=CFG, quiet=True)
    (root / "images" / "A2.jpg").write_bytes(b"half a file")  # e.g. edited by hand
    Handler.hits.clear()
    report = ingest_images(root, cfg=CFG, quiet=True)
    assert (report["cached"], report["downloaded"], report["failed"]) == (2, 1, 1)
    assert Handler.hits["/good.jpg"] == 1 and Handler.hits["/png"] == 0
    assert (root / "images" / "A2.jpg").read_bytes() == GOOD


def test_urls_from_2014_and_2018_metadata(server, tmp_path):
    lines = [
        repr({"asin": "A0", "imUrl": f"{server}/good.jpg", "title": "it's 2014"}),
        json.dumps({"asin": "A1", "imageURL": ["http://x/small.jpg"],
                    "imageURLHighRes": [f"{server}/png"]}),
        json.dumps({"asin": "A2", "imageURL": [], "imageURLHighRes": []}),
        json.dumps({"asin": "ZZ", "imUrl": "http://elsewhere/x.jpg"}),
    ]
    meta = tmp_path / "meta.json.gz"
    with gzip.open(meta, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    assert image_urls_from_meta(meta, {"A0", "A1", "A2"}) == {
        "A0": f"{server}/good.jpg", "A1": f"{server}/png"}
    root = _dataset(tmp_path, ["a", "b", "c", "d"])
    report = ingest_images(root, from_meta=meta, cfg=CFG, quiet=True)
    assert report["downloaded"] == 2 and report["no_url"] == 2


def test_local_folder_is_referenced_in_place(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (3, 3), (1, 2, 3)).save(folder / "A1.png")
    (folder / "A2.jpg").write_bytes(b"broken")
    root = _dataset(tmp_path, ["a", "b", "c", "d"])
    report = ingest_images(root, images_dir=folder, quiet=True)
    assert (report["found"], report["failed"], report["no_file"]) == (1, 1, 2)
    ds = load_dataset(root)
    assert ds.image_paths()[1] == (folder / "A1.png").resolve()
    assert ds.image_paths()[2] is None


def test_only_http_urls_are_fetched(tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(GOOD)
    out = download_one(0, "A0", f"file://{secret}", tmp_path / "out", CFG)
    assert out.status == "failed" and "only http/https" in out.error and out.attempts == 1


def test_bad_settings_and_inputs_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        DownloadConfig(workers=0)
    root = _dataset(tmp_path, ["a", "b", "c", "d"])
    with pytest.raises(DataError, match="no image URL"):
        ingest_images(root, quiet=True)
    (tmp_path / "bad.json").write_text("{not json\n")
    with pytest.raises(DataError, match="bad.json:1"):
        image_urls_from_meta(tmp_path / "bad.json")
    assert url_of({"imageURLHighRes": ["", "http://a/b.jpg"]}) == "http://a/b.jpg"
