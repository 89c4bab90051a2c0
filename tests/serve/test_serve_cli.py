"""``mfmrec serve``: one-line refusals (exit 2) before anything binds a port."""

from __future__ import annotations

import shutil


def test_runs_on_different_datasets_are_refused(trained, run_cli, tmp_path):
    data, sasrec, _ = trained
    other_data = tmp_path / "other"
    shutil.copytree(data, other_data)
    other = tmp_path / "sasrec-other"
    shutil.copytree(sasrec, other)
    info = (other / "run.json").read_text().replace(str(data), str(other_data))
    (other / "run.json").write_text(info)
    code, _, err = run_cli("serve", sasrec, other, "--port", "0")
    assert code == 2
    assert err.count("\n") == 1 and "different datasets" in err


def test_bad_options_and_missing_runs_are_one_line(run_cli, trained, tmp_path):
    _, sasrec, _ = trained
    for args, needle in (((tmp_path / "none",), "run directory not found"),
                         ((sasrec, "--port", "70000"), "--port"),
                         ((sasrec, "--max-batch", "0"), "--max-batch"),
                         ((sasrec, "--max-wait-ms", "-1"), "--max-wait-ms")):
        code, _, err = run_cli("serve", *args)
        assert code == 2 and needle in err and err.count("\n") == 1, (args, err)
