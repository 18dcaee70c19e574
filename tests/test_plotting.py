"""Seaborn figures of the chapters, drawn from small tidy tables: what is drawn equals the table."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from mnistnd import clustering, plotting
from mnistnd.plotting import clustering as clustering_plots
from mnistnd.plotting import moe as moe_plots
from mnistnd.plotting import mvae as mvae_plots
from mnistnd.plotting import pbmc as pbmc_plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _data_lines(ax):
    """Lines that carry data (not legend proxies, error-bar caps or reference lines)."""
    return [ln for ln in ax.get_lines()
            if len(ln.get_xdata()) > 1 and ln.get_linestyle() != "None"
            and ln.get_transform() == ax.transData]


def _panels(fig):
    """Visible axes that are not colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _assert_labelled(fig):
    for ax in _panels(fig):
        assert ax.get_xlabel() and ax.get_ylabel()


def _mesh(ax):
    return np.ma.filled(ax.collections[0].get_array(), np.nan)


# ------------------------------------------------------------------ shared helpers
def test_set_style_applies_the_one_theme():
    with mpl.rc_context():
        plotting.set_style()
        assert not mpl.rcParams["axes.spines.top"]
        assert mpl.rcParams["axes.grid"]
        cycle = [to_hex(c["color"]) for c in mpl.rcParams["axes.prop_cycle"]]
        assert cycle == [to_hex(c) for c in plotting.DIGIT_COLORS]


def test_long_history_stacks_runs_and_skips_missing_columns():
    a = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [3.0, 2.0, 1.0], "val_loss": [4, 3, 2]})
    b = pd.DataFrame({"epoch": [0, 1], "train_loss": [5.0, 4.0]})
    long = plotting.long_history({("AE", 0): a, ("AE", 1): b}, ("model", "seed"),
                                 {"val_loss": "val", "train_loss": "train"}, epoch_offset=1)
    assert list(long.columns) == ["model", "seed", "epoch", "term", "value"]
    assert len(long) == 3 * 2 + 2
    assert list(long["term"].cat.categories) == ["val", "train"]
    seed1 = long[long["seed"] == 1]
    assert set(seed1["term"]) == {"train"}
    np.testing.assert_array_equal(seed1["epoch"], [1, 2])
    np.testing.assert_array_equal(seed1["value"], [5.0, 4.0])
    with pytest.raises(ValueError, match="keys"):
        plotting.long_history({("AE", 0): a}, "model", {"train_loss": "train"})
    with pytest.raises(ValueError, match="empty"):
        plotting.long_history({}, "d", {"train_loss": "train"})


def test_history_lines_mark_epochs_so_one_epoch_shows():
    long = plotting.long_history({"a": pd.DataFrame({"epoch": [0], "train_loss": [2.0]})},
                                 "run", {"train_loss": "loss"}, epoch_offset=1)
    _, (ax,) = plotting.panels(1, 1, (3, 3))
    plotting.history_lines(long, ax, hue="run")
    (line,) = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert line.get_marker() == "o" and list(line.get_xdata()) == [1]
    ax.figure.canvas.draw()
    assert [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]] == [1]
    assert ax.get_xlabel() == "epoch"


def test_heatmap_draws_the_frame_with_its_labels():
    frame = pd.DataFrame([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]], index=["a", "b"],
                         columns=["x", "y", "z"])
    _, (ax,) = plotting.panels(1, 1, (3, 3))
    plotting.heatmap(frame, ax, fmt=".1f", cbar_label="value")
    np.testing.assert_array_equal(_mesh(ax).reshape(frame.shape), frame.to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.texts] == ["1.0", "2.0", "3.0", "4.0", "6.0"]  # NaN blank
    assert ax.figure.axes[-1].get_ylabel() == "value"
    with pytest.raises(ValueError, match="annot must have the shape"):
        plotting.heatmap(frame, ax, annot=np.array([["x"]]), fmt="")


def test_panels_hides_spare_axes():
    fig, axes = plotting.panels(5, 3, (2, 2))
    assert len(axes) == 5
    assert len(fig.axes) == 6 and not fig.axes[-1].get_visible()
    with pytest.raises(ValueError, match="n must be"):
        plotting.panels(0, 3, (2, 2))


# ------------------------------------------------------------------ clustering benchmark
def _benchmark_table(seed=0):
    """Tidy table shaped like clustering.benchmark: one row per fit (or pair of fits)."""
    rng = np.random.default_rng(seed)
    rows = [{"experiment": exp, "metric": metric, "method": m, "dim": d, "seed": s,
             "pair": "", "value": rng.random(), "seconds": 0.1,
             "n_clusters_found": int(rng.integers(5, 15))}
            for exp in ("truth", "stability", "bootstrap")
            for metric in ("ARI", "FMI", "NMI")
            for m in ("kmeans", "leiden", "hdbscan")
            for d in (2, 4, 8)
            for s in range(4)]
    return pd.DataFrame(rows)


def test_score_vs_dim_draws_mean_and_sd_of_the_table():
    table = _benchmark_table()
    fig = clustering_plots.score_vs_dim(table, "stability", "FMI")
    ax = fig.axes[0]
    summary = clustering.summarize(table, "stability", "FMI")
    methods = ["kmeans", "leiden", "hdbscan"]
    lines = _data_lines(ax)
    assert len(lines) == len(methods)
    for line, bars, method in zip(lines, ax.collections, methods, strict=True):
        s = summary[summary["method"] == method].sort_values("dim")
        np.testing.assert_array_equal(line.get_xdata(), s["dim"])
        np.testing.assert_allclose(line.get_ydata(), s["mean"])
        half = [(seg[1, 1] - seg[0, 1]) / 2 for seg in bars.get_segments()]
        np.testing.assert_allclose(half, s["sd"])
    dashed = {ln.get_linestyle() for ln in lines[2:]}
    assert dashed == {"--"}  # hdbscan is beyond the paper
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "latent dimension d" and ax.get_ylabel() == "FMI (mean ± sd)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "kmeans", "leiden", "hdbscan (beyond paper)"]
    with pytest.raises(ValueError, match="no rows"):
        clustering_plots.score_vs_dim(table, "truth", "silhouette")


def test_fig3_and_fig5_have_one_panel_per_experiment_or_metric():
    table = _benchmark_table()
    fig = clustering_plots.fig3(table)
    axes = _panels(fig)
    assert [ax.get_title()[0] for ax in axes] == ["A", "B", "C"]
    assert [ax.get_legend() is not None for ax in axes] == [True, False, False]
    assert all(len(_data_lines(ax)) == 3 for ax in axes)
    _assert_labelled(fig)
    fig = clustering_plots.fig3(table[table["experiment"] != "stability"])
    assert "bootstrap" in _panels(fig)[1].get_title()
    fig = clustering_plots.metric_panels(table, metrics=("FMI", "NMI", "ARI"))
    assert [ax.get_ylabel() for ax in _panels(fig)] == [
        "FMI (mean ± sd)", "NMI (mean ± sd)", "ARI (mean ± sd)"]
    _assert_labelled(fig)


def test_cluster_counts_shows_the_methods_choosing_k():
    table = _benchmark_table()
    fig = clustering_plots.cluster_counts(table, expected=10)
    ax = fig.axes[0]
    lines = _data_lines(ax)
    assert len(lines) == 2  # leiden and hdbscan choose the number of clusters; k-means does not
    truth = table[(table["experiment"] == "truth") & (table["metric"] == "ARI")]
    mean = truth[truth["method"] == "leiden"].groupby("dim")["n_clusters_found"].mean()
    np.testing.assert_allclose(lines[0].get_ydata(), mean)
    assert any(np.all(np.asarray(ln.get_ydata()) == 10) for ln in ax.get_lines())
    assert ax.get_ylabel() == "clusters found"
    with pytest.raises(ValueError, match="not in table"):
        clustering_plots.cluster_counts(table, methods=["spectral"])


def test_contingency_heatmap_shows_the_counts():
    counts = np.array([[3, 0], [1, 2], [0, 4]])
    fig = clustering_plots.contingency_heatmap(counts)
    ax = fig.axes[0]
    np.testing.assert_array_equal(_mesh(ax).reshape(counts.shape), counts)
    assert [t.get_text() for t in ax.texts] == [str(v) for v in counts.ravel()]
    _assert_labelled(fig)


# ------------------------------------------------------------------ training histories
def _mvae_histories(dims=(2, 8), n_epochs=4):
    rng = np.random.default_rng(1)
    out = {}
    for d in dims:
        cols = {f"{s}_{t}": rng.random(n_epochs) + 1
                for s in ("train", "val")
                for t in ("loss", "kl", "reconstruction", "gaussian", "categorical")}
        out[d] = pd.DataFrame({"epoch": np.arange(n_epochs), **cols})
    return out


def test_mvae_loss_curves_one_panel_per_dimension():
    histories = _mvae_histories()
    fig = mvae_plots.loss_curves(histories, best_epochs={2: 1, 8: 3})
    axes = _panels(fig)
    assert [ax.get_title() for ax in axes] == ["d = 2", "d = 8"]
    for ax, d in zip(axes, (2, 8), strict=True):
        train, val = _data_lines(ax)[:2]
        np.testing.assert_allclose(train.get_ydata(), histories[d]["train_loss"])
        np.testing.assert_allclose(val.get_ydata(), histories[d]["val_loss"])
    assert axes[1].get_lines()[-1].get_xdata()[0] == 3  # best epoch of d = 8
    assert {t.get_text() for t in axes[0].get_legend().get_texts()} == {
        "train", "validation", "best epoch"}
    ticks = axes[0].get_xticks()
    assert np.array_equal(ticks, np.round(ticks))  # whole epochs only
    _assert_labelled(fig)


def test_mvae_ratio_and_components_one_line_per_dimension():
    histories = _mvae_histories(dims=(2, 4, 16))
    fig = mvae_plots.loss_ratio(histories)
    ax = fig.axes[0]
    lines = _data_lines(ax)
    assert len(lines) == 3
    h = histories[16]
    np.testing.assert_allclose(lines[2].get_ydata(), h["val_loss"] / h["val_kl"])
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "total loss / KL loss"
    fig = mvae_plots.loss_components(histories, split="train")
    axes = _panels(fig)
    assert [len(_data_lines(ax)) for ax in axes] == [3, 3, 3]
    np.testing.assert_allclose(_data_lines(axes[0])[0].get_ydata(),
                               histories[2]["train_reconstruction"])
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "linear"]
    _assert_labelled(fig)
    with pytest.raises(ValueError, match="split"):
        mvae_plots.loss_ratio(histories, split="test")


def test_moe_loss_curves_one_panel_per_present_term():
    hist = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [3.0, 2.0, 1.5],
                         "train_similarity": [1.0, 0.5, 0.2]})
    runs = {"with similarity": hist, "without similarity": hist.drop(columns="train_similarity")}
    fig = moe_plots.loss_curves(runs, terms=("loss", "similarity", "depict"))
    axes = _panels(fig)
    assert [ax.get_ylabel() for ax in axes] == ["training loss", "training similarity"]
    assert [len(_data_lines(ax)) for ax in axes] == [2, 1]
    np.testing.assert_array_equal(_data_lines(axes[1])[0].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="terms"):
        moe_plots.loss_curves(runs, terms=("depict",))


def test_pbmc_loss_curves_one_panel_per_model_one_line_per_seed():
    hist = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [30.0, 20.0, 15.0]})
    histories = {("Autoencoder", 0): hist, ("Autoencoder", 1): hist * 0.9,
                 ("BetaVAE", 0): hist * 1.1}
    fig = pbmc_plots.loss_curves(histories)
    axes = _panels(fig)
    assert [ax.get_title() for ax in axes] == ["Autoencoder", "BetaVAE"]
    assert [len(_data_lines(ax)) for ax in axes] == [2, 1]
    np.testing.assert_allclose(_data_lines(axes[1])[0].get_ydata(), hist["train_loss"] * 1.1)
    assert all(ax.get_yscale() == "log" for ax in axes)
    _assert_labelled(fig)


# ------------------------------------------------------------------ heat maps of the chapters
def test_confusion_heatmap_is_row_normalised_and_hides_small_fractions():
    counts = pd.DataFrame([[8, 2, 0], [1, 0, 99], [0, 0, 0]], index=[0, 1, 2],
                          columns=[0, 1, 2])
    fig = moe_plots.confusion_heatmap(counts, "gen")
    ax = fig.axes[0]
    expected = counts.to_numpy() / np.maximum(counts.sum(axis=1).to_numpy()[:, None], 1)
    np.testing.assert_allclose(_mesh(ax).reshape(3, 3), expected)
    shown = [t.get_text() for t in ax.texts if t.get_text()]
    assert shown == ["0.80", "0.20", "0.99"]  # 0.01 and the zeros are below 0.05
    assert ax.get_title() == "gen"
    _assert_labelled(fig)


def test_mmd_heatmaps_share_one_colour_scale():
    a = pd.DataFrame([[0.0, 0.4], [0.4, -0.1]], index=[0, 1], columns=[0, 1])
    fig = moe_plots.mmd_heatmaps({"with": a, "without": a / 4})
    axes = [ax for ax in _panels(fig)]
    assert len(axes) == 2
    for ax, m in zip(axes, (a, a / 4), strict=True):
        np.testing.assert_allclose(_mesh(ax).reshape(2, 2), m.to_numpy())
        norm = ax.collections[0].norm
        assert (norm.vmin, norm.vmax) == (-0.1, 0.4)
    _assert_labelled(fig)


def test_pbmc_score_heatmaps_equal_the_summary_and_the_report():
    models = ["Autoencoder", "BetaVAE"]
    metrics = ["NMI", "ARI", "HOM", "COM"]
    rng = np.random.default_rng(2)
    mean, sd = rng.random((2, 4)), rng.random((2, 4)) / 10
    summary = pd.DataFrame({(m, s): v[:, j] for j, m in enumerate(metrics)
                            for s, v in (("mean", mean), ("sd", sd))},
                           index=pd.Index(models, name="model"))
    paper = pd.DataFrame(rng.random((1, 4)), index=["Autoencoder"], columns=metrics)
    fig = pbmc_plots.score_heatmaps(summary, paper, title="ours")
    ours, report = _panels(fig)
    np.testing.assert_allclose(_mesh(ours).reshape(2, 4), mean)
    assert ours.texts[0].get_text() == f"{mean[0, 0]:.2f}\n±{sd[0, 0]:.2f}"
    np.testing.assert_allclose(_mesh(report).reshape(2, 4)[0], paper.to_numpy()[0])
    assert np.isnan(_mesh(report)[4:]).all()  # BetaVAE is not in the report
    assert [ax.get_title() for ax in (ours, report)] == ["ours", "report"]
    assert len(fig.axes) == 3  # one shared colour bar
    _assert_labelled(fig)
