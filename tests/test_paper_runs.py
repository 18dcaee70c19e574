"""The resumable paper-setting runs of the MoE-Sim-VAE and the PBMC autoencoders, and the
release's result tables they publish."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnistnd import release


def _tables():
    return {"scores": pd.DataFrame({"NMI": [0.1 + 1e-17, 2 / 3], "model": ["a", "b"]}),
            "mmd": pd.DataFrame({"digit_a": [0], "digit_b": [1], "mmd2": [np.pi]})}


def test_results_round_trip_bit_for_bit(tmp_path):
    tables = _tables()
    folder = release.write_results("pbmc_autoencoders", tables, {"seconds": 1.5},
                                   out_dir=tmp_path / "pbmc")
    back = release.load_results("pbmc_autoencoders", folder=folder)
    assert set(back) == {"scores", "mmd", "manifest"}
    for name, table in tables.items():
        pd.testing.assert_frame_equal(back[name], table, check_exact=True)
    assert back["manifest"]["provenance"] == {"seconds": 1.5}
    assert back["manifest"]["study"] == "pbmc_autoencoders"


def test_results_altered_file_is_refused(tmp_path):
    folder = release.write_results("moe_sim_vae", _tables(), {}, out_dir=tmp_path / "moe")
    (folder / "mmd.csv").write_text("digit_a,digit_b,mmd2\n0,1,0.0\n")
    with pytest.raises(release.ReleaseError, match="mmd.csv.*sha256"):
        release.load_results("moe_sim_vae", folder=folder)


def test_results_bad_study_and_missing(tmp_path):
    with pytest.raises(ValueError, match="study='nope' is unknown"):
        release.write_results("nope", _tables(), {}, out_dir=tmp_path)
    with pytest.raises(release.ReleaseError, match="no results"):
        release.load_results("moe_sim_vae", folder=tmp_path / "empty")


def test_moe_paper_settings_refuse_unknown_names():
    from mnistnd import moe_paper

    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['epoch'\]"):
        moe_paper.settings(epoch=3)
    assert moe_paper.settings()["code_size"] == 68


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_moe_paper_run_resumes_and_evaluates(tmp_path):
    """A finished run is loaded, not retrained; its evaluation gives consistent tables."""
    from mnistnd import moe_paper

    kw = {"source": "bundled", "n_train": 300, "epochs": 1, "n_generate": 5, "progress": False}
    model, history = moe_paper.train(tmp_path, **kw)
    stamp = (tmp_path / "model.pt").stat().st_mtime_ns
    again, history2 = moe_paper.train(tmp_path, **kw)
    assert (tmp_path / "model.pt").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(history, history2)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    kw.pop("progress")
    tables = moe_paper.evaluate(tmp_path, **kw)
    scores = tables["scores"].iloc[0]
    assert 0 <= scores["NMI"] <= 1 and 0 <= scores["generation_accuracy"] <= 1
    rows = tables["generation_confusion"].drop(columns="requested").sum(axis=1).dropna()
    assert np.allclose(rows[rows > 0], 1.0)
    assert set(tables["mmd"].columns) == {"digit_a", "digit_b", "mmd2"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pbmc_paper_run_resumes_pair_by_pair(tmp_path):
    from mnistnd import pbmc_paper

    kw = {"source": "bundled", "models": ["BetaVAE"], "epochs": 1, "seeds": [0],
          "n_top_genes": 50, "tsne_iter": 50, "progress": False}
    scores = pbmc_paper.run(tmp_path, **kw)
    done = tmp_path / "runs" / "BetaVAE-0" / "manifest.json"
    stamp = done.stat().st_mtime_ns
    scores2 = pbmc_paper.run(tmp_path, **kw)
    assert done.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(scores, scores2)
    assert set(scores["model"]) == {"BetaVAE"} and set(scores["metric"]) >= {"NMI", "ARI"}
    detected = pbmc_paper.collect(tmp_path)["detected"]
    assert set(detected["space"]) == {"t-SNE 2-D", "latent"}
    assert (detected["detected"] <= detected["n_types"]).all() and (detected["detected"] >= 1).all()
    folder = pbmc_paper.publish(tmp_path, out_dir=tmp_path / "release")
    back = release.load_results("pbmc_autoencoders", folder=folder)
    pd.testing.assert_frame_equal(back["scores"], scores, check_exact=True)
    with pytest.raises(ValueError, match="unknown setting"):
        pbmc_paper.run(tmp_path, epoch=3)


def test_types_detected_counts_majority_types():
    from mnistnd.pbmc import types_detected

    labels = ["B", "B", "T", "T", "NK", "NK", "Mono"]
    # clusters 0 and 1 are mostly B, cluster 2 mostly T: NK and Mono are not detected
    clusters = [0, 1, 2, 2, 2, 0, 1]
    assert types_detected(labels, clusters) == 2
    assert types_detected(labels, labels) == 4


def test_compare_runs_lines_up_runs_and_report():
    from mnistnd import pbmc

    def scores(shift):
        return pd.DataFrame([{"model": m, "seed": s, "space": "t-SNE 2-D", "metric": k,
                              "value": 0.5 + shift + 0.01 * s}
                             for m in ("BetaVAE", "BetaVSC") for s in (0, 1)
                             for k in pbmc.SCORE_NAMES])

    table = pbmc.compare_runs({"a": scores(0.0), "b": scores(0.2)})
    assert table[("NMI", "a")].tolist() == pytest.approx([0.505, 0.505])
    assert table[("NMI", "b")].tolist() == pytest.approx([0.705, 0.705])
    assert table[("ARI", "a sd")].tolist() == pytest.approx([0.01 / np.sqrt(2)] * 2)
    assert table.loc["BetaVAE", ("NMI", "report")] == pbmc.PAPER_SCORES.loc["BetaVAE", "NMI"]


def test_detection_summary_gives_ranges_and_the_report():
    from mnistnd import pbmc

    table = pd.DataFrame({"model": ["BetaVAE"] * 2 + ["Autoencoder"] * 2, "seed": [0, 1] * 2,
                          "space": "t-SNE 2-D", "detected": [5, 7, 6, 6], "n_types": 9})
    out = pbmc.detection_summary({"run": table})
    assert out.loc["BetaVAE", "run"] == "5-7" and out.loc["Autoencoder", "run"] == "6"
    assert out.loc["BetaVAE", "report"] == 7 and np.isnan(out.loc["Autoencoder", "report"])
    with pytest.raises(ValueError, match="space"):
        pbmc.detection_summary({"run": table}, space="umap")
