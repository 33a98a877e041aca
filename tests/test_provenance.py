"""Provenance paths never name the recording machine's folders (specedge.provenance.portable_path)."""

from pathlib import Path

import pytest

from specedge.provenance import REPO_ROOT, portable_path


def test_inside_the_repository_is_repo_relative():
    assert portable_path(REPO_ROOT / "models" / "checkpoints" / "x.pt") == "models/checkpoints/x.pt"


def test_site_packages_names_the_distribution_and_version():
    import numpy

    where = Path(numpy.__file__).parent / "core"
    got = portable_path(where)
    assert got.startswith("numpy==" + numpy.__version__ + ":numpy/")
    assert "/" + "site-packages" not in got and not got.startswith("/")


def test_elsewhere_keeps_only_the_file_name(tmp_path):
    got = portable_path(tmp_path / "plans" / "p.json")
    assert got == "p.json (outside the repository)"
    assert str(tmp_path) not in got


@pytest.mark.parametrize("value", [None, "plans/p.json"])
def test_none_and_relative_paths_pass_through(value):
    assert portable_path(value) == value


# ---- paths recorded on another machine, paths inside text, checkpoints (specedge traces fix-paths, the store)
FOREIGN_SITE = "/elsewhere/venv/lib/python3.11/site-packages/numpy/core"


def test_a_foreign_site_packages_path_claims_only_a_recorded_version():
    from specedge.provenance import portable_path

    assert portable_path(FOREIGN_SITE, recorded_versions={}) == "numpy:numpy/core"
    assert portable_path(FOREIGN_SITE, recorded_versions={"numpy": "1.2.3"}) == "numpy==1.2.3:numpy/core"


def test_portable_metadata_rewrites_paths_in_values_keys_and_text_only():
    from specedge.provenance import portable_metadata

    record = {"plan": "/tmp/x/plans/p.json", "n": 3, "nested": [{"/tmp/k/v": "see /home/u/m/w.pt now"}],
              "keep": ["12 tokens/s", "1/2", "https://example.org/a/b", "/proc/stat and /proc/<pid>/stat",
                       "models/checkpoints/m"]}
    got, changed = portable_metadata(record)
    assert got["plan"] == "p.json (outside the repository)" and got["n"] == 3
    assert got["nested"] == [{"v (outside the repository)": "see w.pt (outside the repository) now"}]
    assert got["keep"] == record["keep"]
    assert sorted(changed) == ["nested[0].<key>", "nested[0].v (outside the repository)", "plan"]
    assert "/tmp" not in str(changed) and "/home" not in str(changed)


def test_checkpoint_training_records_are_portable(tmp_path):
    import json

    from specedge.record.bytegpt import ByteGPT, ByteGPTConfig, save_bytegpt
    from specedge.record.distill import load_draft

    ckpt = save_bytegpt(ByteGPT(ByteGPTConfig(d_model=16, n_layer=1, n_head=2, vocab_size=32)), tmp_path / "d",
                        extra={"corpus": str(tmp_path / "corpus.txt")})
    cfg = json.loads((ckpt / "config.json").read_text())
    assert cfg["training"]["corpus"] == "corpus.txt (outside the repository)"
    # a checkpoint written before that (the shipped SmolLM2 draft holds its teacher's absolute folder)
    cfg["training"]["teacher"] = {"path": FOREIGN_SITE}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    assert load_draft(ckpt).describe()["training"]["teacher"]["path"] == "numpy:numpy/core"
