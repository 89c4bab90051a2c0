"""``mfmrec features ...``, ``mfmrec data images`` and ``mfmrec data import products``."""

from __future__ import annotations

from PIL import Image

from mfmrec.data import load_dataset
from mfmrec.features.store import load_features


def test_import_products_then_extract_efficientnet_with_layers(run_cli, tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    rows = ["id,articleType,baseColour,productDisplayName"]
    for k in range(12):
        Image.new("RGB", (30, 20), (20 * k, 100, 50)).save(images / f"{k}.jpg")
        rows.append(f"{k},{['Tshirts', 'Watches'][k % 2]},{['Red', 'Blue'][k % 3 % 2]},"
                    f"Brand {['Red', 'Blue'][k % 3 % 2]} Thing {k}")
    (tmp_path / "styles.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cat"
    code, stdout, err = run_cli("data", "import", "products", tmp_path / "styles.csv",
                                "--images", images, "--out", out, "--users", 8,
                                "--hide-in-text", "baseColour", "--negatives", 2,
                                "--min-len", 4, "--max-len", 6)
    assert code == 0, err
    assert "SIMULATED" in stdout and "8 users, 12 items" in stdout
    ds = load_dataset(out)
    assert ds.simulated and all("Red" not in t and "Blue" not in t for t in ds.titles)

    code, stdout, err = run_cli("features", "extract", out, "--encoder", "efficientnet-lite0",
                                "--layers", "--batch-size", 5, "--quiet")
    assert code == 0, err
    assert "12 items, 0 without input (encoded 12)" in stdout
    assert load_features(out, "efficientnet-lite0").matrix.shape == (12, 1280)
    assert load_features(out, "efficientnet-lite0-layers").matrix.shape == (12, 9, 1280)
    code, stdout, _ = run_cli("features", "extract", out, "-q", "--layers")
    assert code == 0 and "up to date" in stdout  # efficientnet-lite0 is the default
    code, stdout, _ = run_cli("features", "info", out)
    assert code == 0 and "12 x 9 x 1280" in stdout and "12 x 1280" in stdout


def test_data_images_from_a_folder_and_user_errors(run_cli, make_dataset, tmp_path):
    root = make_dataset(n=4, no_image=(0, 1, 2, 3))
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (5, 5), (9, 9, 9)).save(folder / "I2.png")
    code, stdout, err = run_cli("data", "images", root, "--images", folder, "--quiet")
    assert code == 0, err
    assert "1 images attached, 0 failed, 1 items now have an image" in stdout
    assert load_dataset(root).image_paths()[2] == (folder / "I2.png").resolve()

    code, _, err = run_cli("features", "extract", root, "--encoder", "clip-rn50")
    assert code == 2 and "RN50.pt" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("features", "extract", tmp_path / "nowhere")
    assert code == 2 and "dataset directory not found" in err


def test_help_lists_the_commands(run_cli):
    code, stdout, _ = run_cli("--help")
    assert code == 0 and "features" in stdout
    code, stdout, _ = run_cli("data", "--help")
    assert "images" in stdout
    code, stdout, _ = run_cli("features", "extract", "--help")
    assert "--layers" in stdout and "clip-vit-b32" in stdout
