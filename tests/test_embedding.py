"""Tests of mnistnd.embedding and its figures (synthetic data only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mnistnd import embedding as emb
from mnistnd.datasets import load_many


def _blobs(k, n=150, sep=20.0, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = sep * np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)[:k]
    if dim > 2:
        centres = np.hstack([centres, np.zeros((k, dim - 2))])
    X = np.concatenate([c + rng.normal(size=(n, dim)) for c in centres])
    y = np.repeat(np.arange(k), n)
    return X, y


# ------------------------------------------------------------------ random forest
def test_forest_separable_data_is_near_perfect():
    X, y = _blobs(3, n=30, sep=12.0, dim=4)
    res = emb.random_forest_accuracy(X, y, n_splits=10, seed=0, n_estimators=20)
    assert res.scores.shape == (10,)
    assert res.mean >= 0.98
    again = emb.random_forest_accuracy(X, y, n_splits=10, seed=0, n_estimators=20)
    np.testing.assert_array_equal(res.scores, again.scores)  # seeded


def test_forest_random_labels_are_near_chance():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = rng.integers(0, 3, size=300)
    res = emb.random_forest_accuracy(X, y, n_splits=5, seed=0, n_estimators=20)
    assert res.mean < 0.5  # chance is 1/3
    assert res.sd > 0


def test_forest_bad_inputs():
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="single class"):
        emb.random_forest_accuracy(X, np.zeros(40, int))
    y = np.r_[np.zeros(35, int), np.ones(5, int)]
    with pytest.raises(ValueError, match="n_splits=10"):
        emb.random_forest_accuracy(X, y, n_splits=10)
    with pytest.raises(ValueError, match="y has 39 entries"):
        emb.random_forest_accuracy(X, y[:-1])


def test_forest_table_and_summary(tmp_path):
    data = {2: _blobs(2, n=20, sep=10.0), 4: _blobs(2, n=20, sep=10.0, dim=4)}
    table = emb.forest_accuracy_table(data, n_splits=4, n_estimators=10, cache_dir=tmp_path,
                                      progress=False)
    assert list(table.columns) == ["latent_dim", "fold", "accuracy"]
    assert len(table) == 8
    again = emb.forest_accuracy_table(data, n_splits=4, n_estimators=10, cache_dir=tmp_path,
                                      progress=False)
    pd.testing.assert_frame_equal(table, again)
    summ = emb.forest_accuracy_summary(table, paper=0.75)
    assert list(summ.index) == [2, 4]
    np.testing.assert_allclose(summ["difference"], summ["mean"] - 0.75)
    assert "difference" not in emb.forest_accuracy_summary(table).columns
    with pytest.raises(ValueError, match="paper"):
        emb.forest_accuracy_summary(table, paper=90)


# ------------------------------------------------------------------ t-SNE
_FAST = {"n_iter": 30, "early_exaggeration_iter": 20, "gradients": "bh", "progress": False}


def test_tsne_cache_hit_and_miss(tmp_path, monkeypatch):
    X, _ = _blobs(2, n=60, dim=5)
    Y = emb.tsne(X, seed=0, perplexity=10, cache_dir=tmp_path, **_FAST)
    assert Y.shape == (120, 2) and np.all(np.isfinite(Y))
    files = sorted(p.name for p in tmp_path.iterdir())
    # the map and the checksum recorded beside it, nothing half-written
    assert len(files) == 2 and files[1] == files[0] + ".sha256"
    assert not any(f.startswith(".") for f in files)

    import openTSNE

    def boom(*args, **kwargs):
        raise AssertionError("cache miss: openTSNE was called")

    monkeypatch.setattr(openTSNE, "TSNE", boom)
    hit = emb.tsne(X.copy(), seed=0, perplexity=10, cache_dir=tmp_path, **_FAST)
    np.testing.assert_array_equal(hit, Y)
    with pytest.raises(AssertionError, match="cache miss"):  # other perplexity
        emb.tsne(X, seed=0, perplexity=12, cache_dir=tmp_path, **_FAST)
    with pytest.raises(AssertionError, match="cache miss"):  # other seed
        emb.tsne(X, seed=1, perplexity=10, cache_dir=tmp_path, **_FAST)
    with pytest.raises(AssertionError, match="cache miss"):  # other gradient method
        emb.tsne(X, seed=0, perplexity=10, cache_dir=tmp_path, **{**_FAST, "gradients": "fft"})
    X2 = X.copy()
    X2[0, 0] += 1e-6
    with pytest.raises(AssertionError, match="cache miss"):  # other data
        emb.tsne(X2, seed=0, perplexity=10, cache_dir=tmp_path, **_FAST)


def test_tsne_is_seeded_and_separates_blobs():
    X, y = _blobs(2, n=60, dim=5)
    fft = {**_FAST, "gradients": "fft"}  # the default path
    a = emb.tsne(X, seed=3, perplexity=10, **fft)
    b = emb.tsne(X, seed=3, perplexity=10, **fft)
    np.testing.assert_allclose(a, b)
    centroid_gap = np.linalg.norm(a[y == 0].mean(0) - a[y == 1].mean(0))
    spread = max(a[y == k].std(0).max() for k in (0, 1))
    assert centroid_gap > 3 * spread


def test_tsne_bad_inputs():
    X, _ = _blobs(1, n=50, dim=3)
    with pytest.raises(ValueError, match="perplexity=30"):
        emb.tsne(X, perplexity=30, progress=False)
    with pytest.raises(ValueError, match="perplexity"):
        emb.tsne(X, perplexity=0, progress=False)
    with pytest.raises(ValueError, match="neighbors"):
        emb.tsne(X, perplexity=5, neighbors="kd", progress=False)
    with pytest.raises(ValueError, match="gradients"):
        emb.tsne(X, perplexity=5, gradients="exact", progress=False)
    with pytest.raises(ValueError, match="NaN"):
        emb.tsne(np.full((50, 2), np.nan), perplexity=5, progress=False)


# ------------------------------------------------------------------ clear centres
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("percentile", [1.0, 2.0, 5.0])
def test_clear_centres_count_blobs(k, percentile):
    from mnistnd.validity import density_peaks

    X, y = _blobs(k, n=150, seed=k)
    rho, delta, gamma = density_peaks(X, percentile)
    assert emb.clear_centres(rho, delta) == k
    idx = emb.centre_indices(rho, delta)
    assert sorted(y[idx]) == list(range(k))  # one centre in each blob


def test_clear_centres_on_blobs_finds_the_blobs():
    toy = emb.clear_centres_on_blobs((2, 3), draws=2, n_per_blob=80, percentiles=(2.0,), seed=1)
    assert list(toy.columns) == ["blobs", "draw", "percentile", "found"]
    assert len(toy) == 4
    assert (toy["found"] == toy["blobs"]).all()
    with pytest.raises(ValueError, match="n_blobs"):
        emb.clear_centres_on_blobs((6,))


def test_clear_centres_hand_made_gammas():
    delta = np.ones(40)
    # three standing out by a factor 10, then a smooth decline (ratios 1.05)
    rho = np.r_[[100.0, 95.0, 90.0], 9.0 / 1.05 ** np.arange(37)]
    assert emb.clear_centres(rho, delta) == 3
    np.testing.assert_array_equal(emb.centre_indices(rho, delta), [0, 1, 2])
    smooth = 100.0 / 1.05 ** np.arange(40)
    assert emb.clear_centres(smooth, delta) == 0
    assert emb.clear_centres(smooth, delta, min_ratio=1.01) >= 1
    # the break beyond the top-30 candidates is not seen
    late = np.r_[100.0 / 1.05 ** np.arange(34), 0.1 / 1.05 ** np.arange(6)]
    assert emb.clear_centres(late, delta) == 0
    assert emb.clear_centres(late, delta, top=40) == 34
    # zero gammas: a drop to zero is the largest possible
    z = np.r_[[5.0, 4.0], np.zeros(10)]
    assert emb.clear_centres(z, np.ones(12)) == 2


def test_table_reports_break_after_the_densest_point():
    # densest point 20x above the next, then three candidates 10x above the bulk
    rho = np.r_[[2000.0, 100.0, 95.0, 90.0], 9.0 / 1.05 ** np.arange(36)]
    delta = np.ones(40)
    row = emb.density_peaks_table({(2, 1.0): (rho, delta, rho * delta)}).iloc[0]
    assert row["n_clear_centres"] == 1
    assert row["first_ratio"] == pytest.approx(20.0)
    assert row["next_break"] == 4
    assert row["next_ratio"] == pytest.approx(10.0)


def test_clear_centres_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        emb.clear_centres(np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        emb.clear_centres(np.r_[1.0, -1.0], np.ones(2))
    with pytest.raises(ValueError, match="min_ratio"):
        emb.clear_centres(np.ones(5), np.ones(5), min_ratio=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        emb.clear_centres(np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="top"):
        emb.clear_centres(np.ones(5), np.ones(5), top=1)


# ------------------------------------------------------------------ density-peak sweep
def test_density_peaks_sweep_table_and_cache(tmp_path, monkeypatch):
    data = {2: _blobs(2, n=60)[0], 3: _blobs(3, n=60, dim=3)[0]}
    sweep = emb.density_peaks_sweep(data, [1.0, 5.0], cache_dir=tmp_path, progress=False)
    assert set(sweep) == {(2, 1.0), (2, 5.0), (3, 1.0), (3, 5.0)}
    table = emb.density_peaks_table(sweep)
    assert list(table["n_clear_centres"]) == [2, 2, 3, 3]
    assert (table["largest_ratio"] >= 1).all()
    assert (table["largest_ratio"] >= table["next_ratio"]).all()
    assert (table["next_break"] >= 2).all()
    sens = emb.clear_centres_sensitivity(sweep, tops=(10, 30))
    assert sens.shape == (4, 2)

    import mnistnd.validity

    monkeypatch.setattr(mnistnd.validity, "density_peaks", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(mnistnd.validity, "density_peaks_multi", lambda *a, **k: 1 / 0)
    again = emb.density_peaks_sweep(data, [1.0, 5.0], cache_dir=tmp_path, progress=False)
    for key in sweep:
        for a, b in zip(sweep[key], again[key], strict=True):
            np.testing.assert_array_equal(a, b)


def test_density_peaks_sweep_in_processes_matches_serial(tmp_path):
    data = {2: _blobs(2, n=50)[0], 3: _blobs(3, n=40, dim=3)[0]}
    serial = emb.density_peaks_sweep(data, [1.0, 5.0], progress=False)
    parallel = emb.density_peaks_sweep(data, [1.0, 5.0], n_jobs=2, cache_dir=tmp_path,
                                       progress=False)
    assert list(parallel) == list(serial)
    for key in serial:
        for a, b in zip(serial[key], parallel[key], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert len(list(tmp_path.glob("dpeaks-*.npz"))) == 4  # workers wrote the cache
    with pytest.raises(ValueError, match="n_jobs"):
        emb.density_peaks_sweep(data, [1.0], n_jobs=0, progress=False)


@pytest.mark.parametrize("bad", [[0.0], [101.0], [-1.0], [], [1.0, 1.0]])
def test_density_peaks_sweep_bad_percentiles(bad, monkeypatch):
    import mnistnd.validity

    monkeypatch.setattr(mnistnd.validity, "density_peaks", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(mnistnd.validity, "density_peaks_multi", lambda *a, **k: 1 / 0)
    with pytest.raises(ValueError, match="percentiles"):
        emb.density_peaks_sweep({2: np.zeros((5, 2))}, bad, progress=False)


def test_density_peaks_sweep_accepts_100_and_tuples():
    X, y = _blobs(2, n=20)
    sweep = emb.density_peaks_sweep({2: (X, y)}, [100.0], progress=False)
    rho, delta, gamma = sweep[(2, 100.0)]
    assert rho.shape == (40,)
    np.testing.assert_allclose(gamma, rho * delta)
    with pytest.raises(ValueError, match="at least 2"):
        emb.density_peaks_sweep({2: X[:1]}, [1.0], progress=False)


# ------------------------------------------------------------------ DISCO
def test_disco_scores_and_summary(tmp_path):
    X, y = _blobs(2, n=40)
    scores = emb.disco_scores({2: (X, y)}, cache_dir=tmp_path, progress=False)
    assert scores[2].shape == (80,)
    assert scores[2].mean() > 0.5  # well-separated blobs score high
    shuffled = np.random.default_rng(0).permutation(y)
    bad = emb.disco_scores({2: (X, shuffled)}, progress=False)[2]
    assert bad.mean() < scores[2].mean()
    summ = emb.disco_summary({2: np.array([-0.5, -0.1, 0.0, 0.05, 0.5])})
    row = summ.loc[2]
    assert row["frac_negative"] == pytest.approx(0.4)
    assert row["frac_at_most_near_zero"] == pytest.approx(0.8)
    assert row["median"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="near_zero"):
        emb.disco_summary({2: np.zeros(3)}, near_zero=1.0)
    with pytest.raises(ValueError, match="labels"):
        emb.disco_scores({2: (X, y[:-1])}, progress=False)


# ------------------------------------------------------------------ subsample
def _adata(d, test_index, seed=0):
    import anndata

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(test_index), d)).astype(np.float32)
    X[:, 0] = test_index  # lets the test check that rows stay aligned
    obs = pd.DataFrame({"digit": np.asarray(test_index) % 10, "test_index": test_index})
    obs.index = obs.index.astype(str)
    return anndata.AnnData(X=X, obs=obs)


def test_subsample_aligns_images_across_datasets():
    idx = np.arange(100, 150)
    ds = {2: _adata(2, idx), 4: _adata(4, idx[::-1].copy())}
    out = emb.subsample(ds, 20, seed=1)
    np.testing.assert_array_equal(out[2][0][:, 0], out[4][0][:, 0])
    np.testing.assert_array_equal(out[2][1], out[4][1])
    assert out[2][0].shape == (20, 2) and out[4][0].shape == (20, 4)
    assert len(set(out[2][0][:, 0])) == 20
    assert emb.subsample(ds, None)[2][0].shape == (50, 2)
    with pytest.raises(ValueError, match="n_points=51"):
        emb.subsample(ds, 51)


def test_missing_datasets_name_the_chapter(tmp_path):
    with pytest.raises(FileNotFoundError, match="mvae_training"):
        load_many([2], "artifacts", artifacts_dir=tmp_path)
    with pytest.raises(ValueError, match="repeated"):
        load_many([2, 2], artifacts_dir=tmp_path)


def test_subsample_bad_inputs():
    ds = {2: _adata(2, np.arange(10))}
    with pytest.raises(ValueError, match="n_points"):
        emb.subsample(ds, 1)
    with pytest.raises(ValueError, match="empty"):
        emb.subsample({}, 5)


# ------------------------------------------------------------------ figures
def _labels_present(fig):
    axes = [ax for ax in fig.axes if ax.get_visible() and not hasattr(ax, "_colorbar")]
    return all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)


def test_figures_have_labelled_axes():
    import matplotlib.pyplot as plt

    from mnistnd.plotting import embedding as plots

    X2, y2 = _blobs(2, n=30)
    X3, y3 = _blobs(3, n=30)
    table = pd.DataFrame({"latent_dim": [2, 2, 4, 4], "fold": [0, 1, 0, 1],
                          "accuracy": [0.9, 0.8, 0.85, 0.95]})
    sweep = emb.density_peaks_sweep({2: X2, 3: X3}, [1.0, 5.0], progress=False)
    figs = [
        plots.forest_accuracy(table),
        plots.tsne_by_digit({2: X2, 3: X3}, {2: y2, 3: y3}),
        plots.tsne_by_disco({2: X2}, {2: np.linspace(-1, 1, 60)}),
        plots.disco_distributions({2: np.linspace(-1, 1, 60), 4: np.zeros(10)}),
        plots.decision_graphs(sweep),
        plots.top_gammas(sweep, percentiles=[5.0]),
    ]
    for fig in figs:
        assert _labels_present(fig)
        plt.close(fig)
    with pytest.raises(KeyError, match="no results"):
        plots.decision_graphs(sweep, dims=[7])


# ------------------------------------------------------------------ densest-point cap
def test_counting_gamma_caps_the_densest_point():
    rho = np.array([10.0, 9.0, 8.0, 1.0])
    delta = np.array([50.0, 4.0, 3.0, 0.5])  # densest point: largest distance to any point
    np.testing.assert_allclose(emb.counting_gamma(rho, delta), [40.0, 36.0, 24.0, 0.5])
    # ties of the largest rho: the first is the densest
    np.testing.assert_allclose(emb.counting_gamma([5.0, 5.0, 1.0], [9.0, 2.0, 1.0]),
                               [10.0, 10.0, 1.0])
    # already below the cap: unchanged
    np.testing.assert_allclose(emb.counting_gamma([5.0, 1.0, 1.0], [1.0, 2.0, 3.0]),
                               [5.0, 2.0, 3.0])


def test_cap_turns_the_artefactual_single_centre_into_the_peaks():
    # two peaks well above a smooth bulk; the densest point's delta spans the whole data set
    rho = np.r_[[100.0, 80.0], 10.0 / 1.05 ** np.arange(38)]
    delta = np.r_[[2000.0, 10.0], np.ones(38)]
    g = np.sort(rho * delta)[::-1][:30]
    assert int(np.argmax(g[:-1] / g[1:])) + 1 == 1  # raw gammas: the artefact
    assert emb.clear_centres(rho, delta) == 2
    np.testing.assert_array_equal(emb.centre_indices(rho, delta), [0, 1])
    assert emb.gap_ratios(rho, delta)[0] == pytest.approx(1000.0 / 800.0)


@pytest.mark.parametrize("percentile", [1.0, 2.0, 5.0])
def test_clear_centres_single_blob_at_most_one(percentile):
    from mnistnd.validity import density_peaks

    X, _ = _blobs(1, n=300, seed=7)
    rho, delta, _ = density_peaks(X, percentile)
    assert emb.clear_centres(rho, delta) <= 1


def test_sweep_equals_single_percentile_calls(tmp_path):
    from mnistnd.validity import density_peaks

    X = _blobs(3, n=40)[0]
    # one percentile cached first, the others computed together later
    emb.density_peaks_sweep({2: X}, [2.0], cache_dir=tmp_path, progress=False)
    sweep = emb.density_peaks_sweep({2: X}, [0.5, 2.0, 5.0], cache_dir=tmp_path, progress=False)
    assert list(sweep) == [(2, 0.5), (2, 2.0), (2, 5.0)]
    for (_, p), res in sweep.items():
        for a, b in zip(res, density_peaks(X, p), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    assert len(list(tmp_path.glob("dpeaks-*.npz"))) == 3
