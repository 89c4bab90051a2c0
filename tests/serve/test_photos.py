"""The photo route serves only regular image files inside the dataset's own images/ folder."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="module")
def hostile(trained, tmp_path_factory):
    """A copy of the demo data whose first items point their photo outside images/:
    a parent path, an absolute path, a symlink out, a ``..`` inside, a non-image."""
    from fastapi.testclient import TestClient

    from mfmrec.serve import create_app
    from mfmrec.training.runs import load_run

    data, sasrec, _ = trained
    root = tmp_path_factory.mktemp("hostile") / "demo"
    shutil.copytree(data, root)
    secret = root.parent / "secret.png"
    secret.write_bytes(b"\x89PNG secret outside the dataset")
    (root / "images" / "link.png").symlink_to(secret)
    (root / "images" / "notes.txt").write_text("not an image")
    bad = ["../dataset.json", str(secret), "images/link.png", "images/../../secret.png",
           "images/notes.txt", "images/missing.png"]
    table = pq.read_table(root / "items.parquet")
    images = table.column("image").to_pylist()
    images[:len(bad)] = bad
    table = table.set_column(table.schema.get_field_index("image"), "image",
                             pa.array(images, type=table.schema.field("image").type))
    pq.write_table(table, root / "items.parquet")
    run = load_run(sasrec, data_dir=root)
    with TestClient(create_app([run])) as client:
        yield client, run.dataset, len(bad)


def test_photos_outside_the_image_folder_are_never_served(hostile):
    client, ds, n = hostile
    for i in range(n):
        r = client.get(f"/api/items/{ds.item_ids[i]}/image")
        assert r.status_code == 404, (ds.item_ids[i], r.status_code)
        assert b"secret" not in r.content
        assert client.get(f"/api/items/{ds.item_ids[i]}").json()["image_url"] is None
    assert client.get(f"/api/items/{ds.item_ids[n]}/image").status_code == 200


@pytest.mark.parametrize("path", [
    "/api/items/..%2F..%2Fdataset.json/image", "/api/items/%2e%2e/image",
    "/api/items/..%252F..%252Fetc%252Fpasswd/image", "/api/items/%2Fetc%2Fpasswd/image",
    "/api/items/../../../etc/passwd", "/static/../dataset.json", "/static/%2e%2e/app.py",
])
def test_traversal_in_the_url_is_a_404(hostile, path):
    client, _, _ = hostile
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert b"root:" not in r.content and b"simulated" not in r.content
    assert client.get("/healthz").status_code == 200
