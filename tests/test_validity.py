"""Validity indices and density peaks against brute force and against the reference packages.

The brute-force functions below build full distance matrices (fine for ~100 points) and follow
each paper's text (or the named implementation's code) literally; the package versions must
agree to 1e-9. Where a reference package is installed (hdbscan, s-dbw, clustpy) the values must
agree with it too.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from sklearn.metrics import silhouette_samples

from mnistnd import validity as V
from mnistnd.validity import _graph

TOL = 1e-9


# ------------------------------------------------------------------------ brute-force versions
def bf_dist(X):
    return squareform(pdist(X))


def bf_core(D, k):
    """Distance to the k-th nearest neighbour counting the point itself (DISCO convention)."""
    return np.sort(D, axis=1)[:, k - 1]


def bf_minimax(W):
    """All-pairs minimax path distances (Floyd-Warshall on the bottleneck semiring)."""
    M = W.copy()
    for k in range(M.shape[0]):
        M = np.minimum(M, np.maximum(M[:, [k]], M[[k], :]))
    np.fill_diagonal(M, 0.0)
    return M


def bf_dc(X, min_points):
    D = bf_dist(X)
    core = bf_core(D, min_points)
    W = np.maximum(D, np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(W, 0.0)
    return bf_minimax(W), core


def bf_disco_samples(X, labels, min_points=5):
    labels = np.asarray(labels)
    ids = set(labels.tolist())
    n = len(X)
    if ids == {-1}:
        return np.full(n, -1.0)
    if len(ids) == 1:
        return np.zeros(n)
    dc, core = bf_dc(X, min_points)
    out = np.empty(n)
    noise = labels == -1
    if len(ids) == 2 and -1 in ids:
        lab = labels.copy()
        lab[noise] = -np.arange(1, noise.sum() + 1)
        out[~noise] = silhouette_samples(dc, lab, metric="precomputed")[~noise]
    else:
        keep = ~noise
        out[keep] = silhouette_samples(dc[np.ix_(keep, keep)], labels[keep], metric="precomputed")
    if noise.any():
        clus = sorted(i for i in ids if i != -1)
        ps = np.full(noise.sum(), np.inf)
        pf = np.full(noise.sum(), np.inf)
        for c in clus:
            mc = core[labels == c].max()
            x = core[noise]
            ps = np.minimum(ps, (x - mc) / np.maximum(x, mc))
            y = dc[np.ix_(noise, labels == c)].min(axis=1)
            pf = np.minimum(pf, (y - mc) / np.maximum(y, mc))
        out[noise] = np.minimum(ps, pf)
    return out


def bf_mst_edges(W, D=None):
    """Kruskal MST edges (i, j, w); equal weights ordered by Euclidean length ``D`` (canonical)."""
    n = W.shape[0]
    i, j = np.triu_indices(n, 1)
    sec = D[i, j] if D is not None else np.zeros(i.size)
    order = np.lexsort((sec, W[i, j]))
    comp = list(range(n))

    def find(x):
        while comp[x] != x:
            x = comp[x]
        return x

    rows, cols = [], []
    for e in order:
        ra, rb = find(i[e]), find(j[e])
        if ra != rb:
            comp[rb] = ra
            rows.append(i[e])
            cols.append(j[e])
    rows, cols = np.array(rows, int), np.array(cols, int)
    return rows, cols, W[rows, cols]


def bf_dbcv(X, labels, squared=False):
    """Moulavi et al. 2014 literally, tied MST weights ordered by edge length (canonical tree).

    ``squared``: the same on squared Euclidean distances, exponent = number of features.
    """
    labels = np.asarray(labels)
    n, dim = X.shape
    D = bf_dist(X) ** 2 if squared else bf_dist(X)
    clus = sorted(set(labels.tolist()) - {-1})
    apcd = np.zeros(n)
    internal, dsc = {}, {}
    for c in clus:
        idx = np.flatnonzero(labels == c)
        Dc = D[np.ix_(idx, idx)]
        for a, i in enumerate(idx):
            d = np.delete(Dc[a], a)
            apcd[i] = 0.0 if np.any(d == 0) else np.mean((1.0 / d) ** dim) ** (-1.0 / dim)
        W = np.maximum(Dc, np.maximum(apcd[idx][:, None], apcd[idx][None, :]))
        r, s, w = bf_mst_edges(W, Dc)
        deg = np.bincount(np.concatenate([r, s]), minlength=len(idx))
        nodes = np.flatnonzero(deg > 1) if np.any(deg > 1) else np.arange(len(idx))
        inner = (deg[r] > 1) & (deg[s] > 1)
        dsc[c] = (w[inner] if inner.any() else w).max()
        internal[c] = idx[nodes]
    total = 0.0
    for c in clus:
        sep = np.inf
        for o in clus:
            if o != c:
                a, b = internal[c], internal[o]
                mr = np.maximum(D[np.ix_(a, b)], np.maximum(apcd[a][:, None], apcd[b][None, :]))
                sep = min(sep, mr.min())
        v = 0.0 if max(sep, dsc[c]) == 0 else (sep - dsc[c]) / max(sep, dsc[c])
        total += (labels == c).sum() * v
    return total / n


def bf_dcsi(X, labels, min_pts=5, variant="r"):
    """DCSI with explicit loops over dense matrices, following each implementation's code.

    ``"r"``: ``calc_DCSI_RW`` (k-th neighbour radii; its separation matrix is filled in both
    triangles and then added to its transpose, which doubles every separation); ``"paper"``:
    the same with the separation as defined; ``"disco"``: the DISCO port (squared distances,
    eps from distinct distance values, neighbours counted within eps, coreless pairs add 0).
    """
    labels = np.asarray(labels)
    D = bf_dist(X) ** 2 if variant == "disco" else bf_dist(X)
    clus = sorted(set(labels.tolist()) - {-1})
    core, conn = {}, {}
    for c in clus:
        idx = np.flatnonzero(labels == c)
        Dc = D[np.ix_(idx, idx)]
        m = len(idx)
        is_core = []
        if variant == "disco":
            radius = []
            for a in range(m):
                values = np.unique(Dc[a])  # distinct values, 0 (the point itself) first
                radius.append(values[min(2 * min_pts, len(values) - 1)])
            eps = np.median(radius)
            for a in range(m):
                within = sum(1 for b in range(m) if b != a and Dc[a, b] <= eps)
                is_core.append(within >= min_pts)
        else:
            kth = [np.sort(np.delete(Dc[a], a)) for a in range(m)]  # others, nearest first
            eps = np.median([row[2 * min_pts - 1] for row in kth])
            is_core = [row[min_pts - 1] <= eps for row in kth]
        core[c] = idx[np.array(is_core, bool)]
        Wc = D[np.ix_(core[c], core[c])]
        conn[c] = bf_mst_edges(Wc)[2].max() if len(core[c]) > 1 else 0.0
    vals = []
    for c, o in itertools.combinations(clus, 2):
        if len(core[c]) == 0 or len(core[o]) == 0:
            vals.append(0.0)
            continue
        sep = D[np.ix_(core[c], core[o])].min()
        sep_matrix_entry = sep + sep if variant == "r" else sep
        q = sep_matrix_entry / max(conn[c], conn[o])
        vals.append(q / (1 + q))
    return float(np.mean(vals))


def bf_s_dbw_halkidi(X, labels):
    """S_Dbw exactly as in Halkidi & Vazirgiannis (2001): variance vectors, mean centres."""
    labels = np.asarray(labels)
    clus = sorted(set(labels.tolist()) - {-1})
    keep = labels != -1
    X, labels = X[keep], labels[keep]
    c = len(clus)
    sig = {k: X[labels == k].var(axis=0) for k in clus}
    norm = {k: np.linalg.norm(sig[k]) for k in clus}
    scat = sum(norm.values()) / c / np.linalg.norm(X.var(axis=0))
    stdev = np.sqrt(sum(norm.values())) / c
    v = {k: X[labels == k].mean(axis=0) for k in clus}

    def dens(u, ks):
        return sum(int(np.sum(np.linalg.norm(X[labels == k] - u, axis=1) <= stdev)) for k in ks)

    tot = 0.0
    for i in clus:
        for j in clus:
            if i != j:
                tot += dens((v[i] + v[j]) / 2, [i, j]) / max(dens(v[i], [i]), dens(v[j], [j]))
    return tot / (c * (c - 1)) + scat


def bf_density_peaks(X, percentile):
    D = bf_dist(X)
    n = len(X)
    dc = np.percentile(D[np.triu_indices(n, 1)], percentile)
    K = np.exp(-((D / dc) ** 2))
    rho = K.sum(axis=1) - 1.0
    key = np.round(rho / rho.max(), 9)
    delta = np.empty(n)
    for i in range(n):
        denser = [j for j in range(n) if key[j] > key[i] or (key[j] == key[i] and j < i)]
        delta[i] = D[i, denser].min() if denser else D[i].max()
    return rho, delta, rho * delta


# ------------------------------------------------------------------------ fixtures
def blobs(n_per=30, centers=((0, 0), (6, 0), (0, 6)), scale=1.0, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    cs = np.zeros((len(centers), dim))
    cs[:, : len(centers[0])] = centers
    X = np.concatenate([c + scale * rng.standard_normal((n_per, dim)) for c in cs])
    y = np.repeat(np.arange(len(centers)), n_per)
    return X, y


@pytest.fixture
def data():
    return blobs(n_per=30, scale=1.5, dim=3, seed=1)


# ------------------------------------------------------------------------ DISCO
@pytest.mark.parametrize("min_points", [1, 2, 5])
def test_disco_matches_bruteforce(data, min_points):
    X, y = data
    np.testing.assert_allclose(
        V.disco_samples(X, y, min_points), bf_disco_samples(X, y, min_points), atol=TOL
    )


def test_disco_with_noise_and_singletons(data):
    X, y = data
    y = y.copy()
    y[[0, 5, 40, 70]] = -1
    y[10] = 7  # a singleton cluster scores 0
    ours = V.disco_samples(X, y)
    np.testing.assert_allclose(ours, bf_disco_samples(X, y), atol=TOL)
    assert ours[10] == 0.0


def test_disco_one_cluster_with_noise(data):
    X, _ = data
    y = np.zeros(len(X), int)
    y[[3, 50, 80]] = -1
    np.testing.assert_allclose(V.disco_samples(X, y), bf_disco_samples(X, y), atol=TOL)


def test_disco_documented_degenerate_cases(data):
    X, y = data
    assert np.all(V.disco_samples(X, np.full(len(X), -1)) == -1)
    assert np.all(V.disco_samples(X, np.zeros(len(X), int)) == 0)
    assert V.disco(X, y) == pytest.approx(np.mean(V.disco_samples(X, y)))


def test_disco_duplicates(data):
    X, y = data
    X = np.concatenate([X, X[:10]])
    y = np.concatenate([y, y[:10]])
    np.testing.assert_allclose(V.disco_samples(X, y), bf_disco_samples(X, y), atol=TOL)




# ------------------------------------------------------------------------ DBCV
def grid_clusters(dim, seed, jitter=1e-6):
    """Two clusters of points on a unit grid (in up to 3 coordinates) with a tiny jitter.

    Neighbours are nearly equidistant, so many mutual-reachability distances tie (a core
    distance dominates) and the tied minimum spanning trees differ; the jitter leaves no
    duplicated points.
    """
    rng = np.random.default_rng(seed)
    g = np.array(list(itertools.product(range({2: 7, 3: 4}.get(dim, 3)), repeat=min(dim, 3))))
    G = np.zeros((len(g), dim))
    G[:, : g.shape[1]] = g
    shift = np.zeros(dim)
    shift[0] = G[:, 0].max() + 3.0
    X = np.concatenate([G, G + shift]) + jitter * rng.standard_normal((2 * len(G), dim))
    return X, np.repeat([0, 1], len(G))


def hdbscan_cases():
    """(id, X, labels) of the data sets compared with hdbscan: grids and separated blobs."""
    for dim in (2, 3, 4, 8, 16):
        for seed in (0, 1, 2):
            yield f"grid-{dim}d-{seed}", *grid_clusters(dim, seed)
            centres = 10.0 * np.eye(3, 2)
            yield f"blobs-{dim}d-{seed}", *blobs(n_per=40, centers=centres, dim=dim, seed=seed)


HDBSCAN_CASES = list(hdbscan_cases())


def with_noise(y, seed, frac=0.1):
    y = y.copy()
    y[np.random.default_rng(seed).random(len(y)) < frac] = -1
    return y


@pytest.mark.parametrize(("X", "y"), [c[1:] for c in HDBSCAN_CASES],
                         ids=[c[0] for c in HDBSCAN_CASES])
def test_dbcv_default_equals_hdbscan(X, y):
    hv = pytest.importorskip("hdbscan.validity")
    for labels in (y, with_noise(y, seed=len(X))):
        assert V.dbcv(X, labels) == pytest.approx(hv.validity_index(X, labels), abs=TOL)
        assert V.dbcv(X, labels, metric="sqeuclidean") == pytest.approx(
            hv.validity_index(X, labels, metric="sqeuclidean"), abs=TOL
        )


def test_dbcv_hdbscan_follows_point_order_and_length_ties_do_not():
    # Tied mutual-reachability weights make the MST non-unique: hdbscan's tree (and value)
    # follows the order of the points, ours with mst="length_ties" does not.
    hv = pytest.importorskip("hdbscan.validity")
    X, y = grid_clusters(2, seed=0)
    rng = np.random.default_rng(3)
    ours, theirs, canonical = [], [], []
    for _ in range(4):
        p = rng.permutation(len(X))
        ours.append(V.dbcv(X[p], y[p]))
        theirs.append(hv.validity_index(X[p], y[p]))
        canonical.append(V.dbcv(X[p], y[p], mst="length_ties"))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)
    assert np.ptp(theirs) > 1e-3  # the order matters for hdbscan's tree
    assert np.ptp(canonical) < TOL
    assert canonical[0] == pytest.approx(bf_dbcv(X, y), abs=TOL)


def test_dbcv_hdbscan_tiny_clusters_and_duplicates():
    # 2-point cluster: hdbscan takes node 0 alone as internal; 3-point: all edges
    hv = pytest.importorskip("hdbscan.validity")
    X, y = blobs(n_per=30, scale=1.0, dim=2, seed=4)
    y = y.copy()
    y[:2] = 3
    y[30:33] = 4
    y[60] = -1
    assert V.dbcv(X, y) == pytest.approx(hv.validity_index(X, y), abs=TOL)
    # duplicated points: hdbscan leaves zero distances out of the core distance; so do we
    X2 = np.concatenate([X, X[5:9]])
    y2 = np.concatenate([y, y[5:9]])
    assert V.dbcv(X2, y2) == pytest.approx(hv.validity_index(X2, y2), abs=TOL)


def test_dbcv_length_ties_matches_bruteforce(data):
    X, y = data
    assert V.dbcv(X, y, mst="length_ties") == pytest.approx(bf_dbcv(X, y), abs=TOL)
    assert V.dbcv(X, y, mst="length_ties", metric="sqeuclidean") == pytest.approx(
        bf_dbcv(X, y, squared=True), abs=TOL
    )


def test_dbcv_length_ties_noise_counts_in_weights(data):
    X, y = data
    y = y.copy()
    y[[0, 1, 2, 45]] = -1
    assert V.dbcv(X, y, mst="length_ties") == pytest.approx(bf_dbcv(X, y), abs=TOL)


def test_dbcv_length_ties_tiny_clusters_follow_fallback():
    X, y = blobs(n_per=30, scale=1.0, dim=2, seed=4)
    y = y.copy()
    y[:2] = 5  # a 2-point cluster: no internal node, all nodes/edges used
    y[30:33] = 6  # a 3-point cluster: one internal node, no internal edge
    for squared in (False, True):
        metric = "sqeuclidean" if squared else "euclidean"
        assert V.dbcv(X, y, mst="length_ties", metric=metric) == pytest.approx(
            bf_dbcv(X, y, squared=squared), abs=TOL
        )


def test_dbcv_length_ties_high_dimension_no_overflow():
    # (1/d)^64 overflows float64 for d < 1.6e-5; the scaled form stays exact: DBCV is scale
    # invariant, so the tiny copy must score like the original
    X, y = blobs(n_per=25, scale=1.0, centers=((0, 0), (10, 0)), dim=64, seed=5)
    val = V.dbcv(X, y, mst="length_ties")
    assert -1 <= val <= 1
    assert V.dbcv(X * 1e-7, y, mst="length_ties") == pytest.approx(val, abs=TOL)


def test_dbcv_length_ties_is_permutation_invariant(data):
    X, y = data
    p = np.random.default_rng(0).permutation(len(X))
    for metric in ("euclidean", "sqeuclidean"):
        assert V.dbcv(X[p], y[p], mst="length_ties", metric=metric) == pytest.approx(
            V.dbcv(X, y, mst="length_ties", metric=metric), abs=TOL
        )


def test_dbcv_bad_options_raise(data):
    X, y = data
    with pytest.raises(ValueError, match=r"mst='prim' is not one of \['hdbscan', 'length_ties'\]"):
        V.dbcv(X, y, mst="prim")
    with pytest.raises(ValueError, match="metric='cityblock' is not one of"):
        V.dbcv(X, y, metric="cityblock")


# ------------------------------------------------------------------------ DCSI
@pytest.mark.parametrize("variant", ["r", "paper", "disco"])
def test_dcsi_matches_bruteforce(data, variant):
    X, y = data
    assert V.dcsi(X, y, variant=variant) == pytest.approx(bf_dcsi(X, y, 5, variant), abs=TOL)


@pytest.mark.parametrize("variant", ["r", "paper", "disco"])
def test_dcsi_min_pts_and_noise(data, variant):
    X, y = data
    y = y.copy()
    y[[4, 44]] = -1
    assert V.dcsi(X, y, min_pts=3, variant=variant) == pytest.approx(
        bf_dcsi(X, y, 3, variant), abs=TOL
    )


def test_dcsi_r_doubles_the_separation(data):
    # calc_DCSI_RW's pairwise q is twice the paper's: 2s / (2s + c) against s / (s + c)
    X, y = data
    y2 = np.where(y == 2, -1, y)  # one pair: the two indices determine each other
    paper = V.dcsi(X, y2, variant="paper")
    q = paper / (1 - paper)
    assert V.dcsi(X, y2, variant="r") == pytest.approx(2 * q / (1 + 2 * q), abs=TOL)


def test_dcsi_disco_ties_and_small_clusters():
    # integer grid: exactly tied distances, so eps from distinct values differs from the k-th
    # neighbour; the port also scores clusters of any size (no core points: the pair adds 0)
    g = np.array(list(itertools.product(range(6), range(6))), float)
    X = np.concatenate([g, g + [9.0, 0.0], [[30.0, 30.0], [30.0, 31.0], [31.0, 30.0]]])
    y = np.repeat([0, 1, 2], [36, 36, 3])
    for mp in (2, 3, 4):
        assert V.dcsi(X, y, mp, variant="disco") == pytest.approx(
            bf_dcsi(X, y, mp, "disco"), abs=TOL
        )
    D = bf_dist(g) ** 2
    assert any(np.unique(row)[4] != np.sort(row)[4] for row in D)  # the distinct rule matters
    with pytest.raises(ValueError, match="2 \\* min_pts"):
        V.dcsi(X, y, 2, variant="r")


def test_dcsi_bad_variant_raises(data):
    X, y = data
    allowed = r"\['r', 'paper', 'disco'\]"
    with pytest.raises(ValueError, match=rf"variant='python' is not one of {allowed}"):
        V.dcsi(X, y, variant="python")


# ------------------------------------------------------------------------ S_Dbw
def test_s_dbw_matches_paper_bruteforce(data):
    X, y = data
    paper = {"method": "halkidi", "dispersion": "variance", "centers": "mean"}
    assert V.s_dbw(X, y, **paper) == pytest.approx(bf_s_dbw_halkidi(X, y), abs=TOL)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"method": "tong", "dispersion": "std", "centers": "nearest"}, {}),
        ({"method": "halkidi", "dispersion": "std", "centers": "nearest"}, {"method": "Halkidi"}),
        ({"method": "halkidi", "dispersion": "std", "centers": "mean"},
         {"method": "Halkidi", "nearest_centr": False}),
    ],
)
def test_s_dbw_agrees_with_package(data, ours, theirs):
    sdbw = pytest.importorskip("s_dbw")
    X, y = data
    assert V.s_dbw(X, y, **ours) == pytest.approx(sdbw.S_Dbw(X, y, **theirs), abs=TOL)
    y = y.copy()
    y[[7, 77]] = -1  # our noise handling is the package's "filter"
    assert V.s_dbw(X, y, **ours) == pytest.approx(
        sdbw.S_Dbw(X, y, alg_noise="filter", **theirs), abs=TOL
    )


# ------------------------------------------------------------------------ toy geometry
def test_indices_rank_good_partition_above_bad():
    X, y = blobs(n_per=40, centers=((0, 0), (10, 0)), scale=1.0, dim=2, seed=7)
    bad = (X[:, 1] > np.median(X[:, 1])).astype(int)  # cuts across both blobs
    assert V.disco(X, y) > 0.5 > V.disco(X, bad)
    assert V.dbcv(X, y) > 0.5 > V.dbcv(X, bad)
    assert V.dcsi(X, y) > V.dcsi(X, bad)
    assert V.s_dbw(X, y) < V.s_dbw(X, bad)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("fn", [V.disco, V.dbcv, V.dcsi, V.s_dbw])
def test_bad_input_raises(fn, data):
    X, y = data
    with pytest.raises(ValueError, match="labels"):
        fn(X, y[:-1])
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains"):
        fn(Xn, y)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="X contains"):
        fn(Xi, y)
    with pytest.raises(ValueError, match="negative label"):
        fn(X, np.where(y == 0, -2, y))


@pytest.mark.parametrize("fn", [V.dbcv, V.dcsi, V.s_dbw])
def test_single_cluster_raises(fn, data):
    X, _ = data
    with pytest.raises(ValueError, match="at least 2 clusters"):
        fn(X, np.zeros(len(X), int))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        fn(X, np.r_[np.zeros(len(X) - 3, int), -np.ones(3, int)])


def test_small_clusters_raise_or_are_defined(data):
    X, y = data
    y = y.copy()
    y[0] = 9
    for mst in ("hdbscan", "length_ties"):
        with pytest.raises(ValueError, match="2 points per cluster"):
            V.dbcv(X, y, mst=mst)
    for variant in ("r", "paper"):
        with pytest.raises(ValueError, match="2 \\* min_pts"):
            V.dcsi(X, y, variant=variant)
    assert V.dcsi(X, y, variant="disco") == pytest.approx(bf_dcsi(X, y, 5, "disco"), abs=TOL)
    assert np.isfinite(V.disco(X, y))  # defined: a singleton scores 0
    with pytest.raises(ValueError, match="min_points"):
        V.disco(X, y, min_points=len(X) + 1)


# ------------------------------------------------------------------------ density peaks
@pytest.mark.parametrize("percentile", [0.5, 2.0, 10.0, 100.0])
def test_density_peaks_matches_bruteforce(percentile):
    rng = np.random.default_rng(11)
    X = rng.standard_normal((120, 5))
    for ours, ref in zip(V.density_peaks(X, percentile), bf_density_peaks(X, percentile),
                         strict=True):
        np.testing.assert_allclose(ours, ref, rtol=TOL, atol=TOL)


def test_density_peaks_ties_and_duplicates():
    # integer grid: many equal distances and equal densities; plus exact duplicates
    g = np.array(list(itertools.product(range(6), range(6))), float)
    X = np.concatenate([g, g[[0, 7, 7, 20]]])
    for p in (1.0, 5.0, 30.0):
        rho, delta, gamma = V.density_peaks(X, p)
        rr, dd, gg = bf_density_peaks(X, p)
        np.testing.assert_allclose(rho, rr, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(delta, dd, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(gamma, gg, rtol=TOL, atol=TOL)
    # the shared-pass version (neighbour lists for delta) agrees on ties and duplicates too
    for p, (r2, d2, g2) in zip((1.0, 5.0, 30.0), V.density_peaks_multi(X, [1.0, 5.0, 30.0]),
                               strict=True):
        rr, dd, gg = bf_density_peaks(X, p)
        np.testing.assert_allclose(r2, rr, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(d2, dd, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(g2, gg, rtol=TOL, atol=TOL)
    # copies share rho; the later copies have delta 0
    assert rho[36] == rho[0] and delta[36] == 0.0 and delta[0] > 0
    assert delta[37] == 0.0 and delta[38] == 0.0




def test_density_peaks_two_blobs_give_two_clear_centres():
    X, _ = blobs(n_per=100, centers=((0, 0), (8, 0)), scale=1.0, dim=2, seed=9)
    rho, delta, gamma = V.density_peaks(X, 2.0)
    top = np.sort(gamma)[::-1]
    assert top[1] > 5 * top[2]  # two centres stand out from the rest
    centres = np.argsort(gamma)[::-1][:2]
    assert {int(c) // 100 for c in centres} == {0, 1}  # one per blob


def test_density_peaks_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 2))
    for p in (0, -1, 100.5):
        with pytest.raises(ValueError, match="percentile"):
            V.density_peaks(X, p)
    with pytest.raises(ValueError, match="X"):
        V.density_peaks(X[:1], 2.0)
    with pytest.raises(ValueError, match="identical"):
        V.density_peaks(np.ones((5, 2)), 2.0)
    Xd = np.concatenate([np.zeros((50, 2)), np.ones((1, 2))])
    with pytest.raises(ValueError, match="d_c = 0"):
        V.density_peaks(Xd, 10.0)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        V.density_peaks(Xn, 2.0)



def test_disco_agrees_with_authors_reference(data):
    ref = pytest.importorskip("clustpy.metrics.internal.disco")
    X, y = data
    y = y.copy()
    y[[0, 33, 66]] = -1
    np.testing.assert_allclose(V.disco_samples(X, y), ref.disco_samples(X, y), atol=TOL)
    y1 = np.where(y == -1, -1, 0)
    assert V.disco(X, y1) == pytest.approx(ref.disco_score(X, y1), abs=TOL)


def test_dbcv_dcsi_with_duplicates(data):
    # duplicated points: apcd = 0 (limit of the definition), zero-length MST edges
    X, y = data
    X = np.concatenate([X, X[:6], X[40:43]])
    y = np.concatenate([y, y[:6], y[40:43]])
    assert V.dbcv(X, y, mst="length_ties") == pytest.approx(bf_dbcv(X, y), abs=TOL)
    for variant in ("r", "paper", "disco"):
        assert V.dcsi(X, y, variant=variant) == pytest.approx(
            bf_dcsi(X, y, 5, variant), abs=TOL
        )


def test_score_all_reports_undefined_indices():
    X, y = blobs(n_per=30, centers=((0,) * 2, (3,) * 2), dim=64, seed=2)
    out = V.score_all(X, y)
    assert out["S_Dbw (2001)"] is None and "zero density" in out["S_Dbw (2001) note"]
    assert all(np.isfinite(out[k]) for k in ("DISCO", "DBCV", "DCSI", "S_Dbw"))
    table = V.indices_table({2: blobs(n_per=20, seed=1)})
    assert "DBCV paper" not in table and table.loc[0, "n_points"] == 60


def test_score_all_uses_the_default_variants(data):
    X, y = data
    out = V.score_all(X, y, min_points=4)
    assert out["DBCV"] == V.dbcv(X, y)
    assert out["DCSI"] == V.dcsi(X, y, min_pts=4)


def test_index_variants_match_the_options(data):
    X, y = data
    out = V.index_variants(X, y, min_points=4)
    assert list(out) == list(V.INDEX_VARIANTS)
    assert list(out) == ["DBCV (hdbscan)", "DBCV (length ties)", "DBCV (squared, DISCO repo)",
                         "DCSI (R)", "DCSI (paper definition)", "DCSI (squared, DISCO repo)"]
    assert all(isinstance(v, str) and v for v in V.INDEX_VARIANTS.values())
    expected = [V.dbcv(X, y), V.dbcv(X, y, mst="length_ties"),
                V.dbcv(X, y, metric="sqeuclidean"), V.dcsi(X, y, 4),
                V.dcsi(X, y, 4, variant="paper"), V.dcsi(X, y, 4, variant="disco")]
    assert list(out.values()) == expected
    # a variant undefined for the data is None with its reason; the others are computed
    y = y.copy()
    y[:85] = 0
    out = V.index_variants(X, y, min_points=4)
    assert out["DCSI (R)"] is None and "2 * min_pts" in out["DCSI (R) note"]
    assert np.isfinite(out["DCSI (squared, DISCO repo)"]) and np.isfinite(out["DBCV (hdbscan)"])




def test_density_peaks_multi_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match=r"percentiles\[1\]"):
        V.density_peaks_multi(X, [1.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        V.density_peaks_multi(X, [])
    with pytest.raises(TypeError, match="percentiles"):
        V.density_peaks_multi(X, 2.0)


def test_score_all_raises_on_bad_input_instead_of_reporting_undefined():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    labels = np.repeat([0, 1], 20)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        V.score_all(X, labels)
    with pytest.raises(ValueError, match="labels"):
        V.score_all(rng.normal(size=(40, 2)), labels[:-1])


def test_disco_larger_data_with_duplicates_and_noise():
    X, y = blobs(n_per=45, scale=1.0, dim=4, seed=3)
    X = np.concatenate([X, X[:5]])
    y = np.concatenate([y, y[:5]])
    y[[2, 50]] = -1
    for mp in (2, 5):
        np.testing.assert_allclose(V.disco_samples(X, y, mp), bf_disco_samples(X, y, mp), atol=TOL)


def random_clusters(dim, seed, n=90, k=3):
    """Gaussian clusters with random centres, no two points equal."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    return rng.normal(scale=3.0, size=(k, dim))[y] + rng.standard_normal((len(y), dim)), y


@pytest.mark.parametrize("dim", [2, 3, 5, 8, 12, 16])
def test_dbcv_default_equals_hdbscan_on_random_data(dim):
    hv = pytest.importorskip("hdbscan.validity")
    for seed in range(3):
        X, y = random_clusters(dim, seed)
        y = with_noise(y, seed) if seed == 2 else y
        assert V.dbcv(X, y) == pytest.approx(hv.validity_index(X, y), abs=TOL)


@pytest.mark.parametrize("dup", [False, True])
def test_density_peaks_in_small_blocks_match_bruteforce(dup, monkeypatch):
    rng = np.random.default_rng(21)
    X = rng.standard_normal((160, 4))
    if dup:
        X = np.concatenate([X, X[:15]])
    monkeypatch.setattr(_graph, "BLOCK_BYTES", 8 * len(X) * 9)  # 9-row blocks
    qs = [0.1, 2.0, 100.0]
    multi = V.density_peaks_multi(X, qs)
    for q, got in zip(qs, multi, strict=True):
        for ours, single, ref in zip(got, V.density_peaks(X, q), bf_density_peaks(X, q),
                                     strict=True):
            np.testing.assert_array_equal(ours, single)
            np.testing.assert_allclose(ours, ref, rtol=TOL, atol=TOL)


def test_density_peaks_percentile_is_numpys():
    # d_c is numpy's (linear) percentile of the pairwise distances, also at extreme ranks
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 3))
    for q in (0.01, 3.0, 50.0):
        dc = np.percentile(pdist(X), q)
        rho = V.density_peaks(X, q)[0]
        K = np.exp(-((bf_dist(X) / dc) ** 2))
        np.fill_diagonal(K, 0.0)
        np.testing.assert_allclose(rho, K.sum(axis=1), rtol=TOL)


# ------------------------------------------------------------------------ fast paths vs plain
def tie_data(seed=0):
    """Integer grid points (exact distances, many ties), duplicated rows, separated groups."""
    rng = np.random.default_rng(seed)
    G = rng.integers(0, 4, (120, 3)).astype(float)
    far = rng.integers(0, 3, (60, 3)).astype(float) + 40.0
    return np.concatenate([G, G[:15], far, far[:5], rng.integers(0, 2, (20, 3)) - 30.0])


@pytest.mark.parametrize("min_points", [1, 2, 5])
@pytest.mark.parametrize("ties", [True, False])
def test_nearest_neighbor_tree_equals_dense_tree(min_points, ties):
    from scipy.cluster.hierarchy import cophenet

    from mnistnd.validity import _mst

    X = tie_data() if ties else np.random.default_rng(1).standard_normal((200, 4))
    neighbors = _graph.nearest_neighbors(X, 6)
    D = bf_dist(X)
    np.fill_diagonal(D, np.inf)
    unlisted = np.ones_like(D, bool)
    unlisted[np.arange(len(X))[:, None], neighbors[0]] = False
    np.fill_diagonal(unlisted, False)
    assert np.all(D[unlisted] >= np.repeat(neighbors[2], unlisted.sum(1)))
    core = _graph.kth_neighbor_distance(X, min_points - 1, neighbors) if min_points > 1 else (
        np.zeros(len(X)))
    check = np.testing.assert_array_equal if ties else np.testing.assert_allclose
    if min_points > 1:
        check(core, np.sort(D, axis=1)[:, min_points - 2])
    comp = _mst._certified_forest(core, *neighbors)[3]
    assert comp.max() >= 1  # the completion is exercised
    Z = _mst.linkage_from_tree(len(X), *_mst.mutual_reachability_mst(X, core, neighbors))
    Z_dense = _graph.mutual_reachability_linkage(X, core)
    check(np.sort(Z[:, 2]), np.sort(Z_dense[:, 2]))
    check(cophenet(Z), cophenet(Z_dense))
    W = np.maximum(bf_dist(X), np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(W, 0.0)
    np.testing.assert_allclose(squareform(cophenet(Z)), bf_minimax(W), atol=TOL)


def test_disco_nearest_neighbor_path_equals_plain_path(monkeypatch):
    import importlib

    from mnistnd.validity import _mst

    disco_module = importlib.import_module("mnistnd.validity.disco")  # the name is the function

    X = np.concatenate([tie_data(), np.random.default_rng(2).standard_normal((80, 3)) + 10])
    y = (X[:, 0] > 20).astype(int) + 2 * (X[:, 0] > 5) - (X[:, 0] < -20)
    plain = {mp: V.disco_samples(X, y, mp) for mp in (1, 3, 5)}
    monkeypatch.setattr(disco_module, "DENSE_LIMIT", 0)
    monkeypatch.setattr(disco_module, "N_NEIGHBORS", 4)
    for mp, expected in plain.items():
        np.testing.assert_allclose(V.disco_samples(X, y, mp), expected, atol=1e-12)
    monkeypatch.setattr(_mst, "MAX_COMPONENTS", 1)  # too many components: the plain path
    np.testing.assert_allclose(V.disco_samples(X, y, 5), plain[5], atol=1e-12)


@pytest.mark.parametrize("squared", [False, True])
def test_min_cross_is_exact_with_ties(squared):
    X = tie_data()
    A, B = X[:100], X[100:]
    rng = np.random.default_rng(3)
    core_a, core_b = rng.integers(0, 3, 100).astype(float), rng.integers(0, 3, len(B)) * 1.0
    D = bf_dist(np.concatenate([A, B]))[:100, 100:] ** (2 if squared else 1)
    assert _graph.min_cross(A, B, squared=squared) == D.min()
    W = np.maximum(D, np.maximum(core_a[:, None], core_b[None, :]))
    assert _graph.min_cross(A, B, core_a, core_b, squared=squared) == W.min()
    Xr = np.random.default_rng(4).standard_normal((150, 5)) * 1e3
    expected = bf_dist(Xr)[:70, 70:].min()
    assert _graph.min_cross(Xr[:70], Xr[70:]) == pytest.approx(expected, rel=1e-15)
