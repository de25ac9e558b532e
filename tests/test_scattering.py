"""Wavelet scattering (issue 26): kymatio beside scipy 1.17, the transformer's shapes and input checks, the fused
HOG + scattering vector and its block weight."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from conftest import bars, colour_bars
from pipelines.handcrafted.scattering import BlockScaler, ScatteringFeatures, kymatio_torch


def test_the_sph_harm_alias_agrees_with_scipys_sph_harm_y():
    import scipy.special as special
    kymatio_torch()
    m, n, azimuth, polar = 1, 3, 0.7, 1.1
    assert np.isclose(special.sph_harm(m, n, azimuth, polar), special.sph_harm_y(n, m, polar, azimuth))


@pytest.fixture(scope="module")
def images():
    return bars(40, seed=5)


def test_scattering_has_the_documented_shape_and_is_a_transformer(images):
    x, _ = images
    scat = ScatteringFeatures(J=2, L=8).fit(x)
    out = scat.transform(x)
    assert out.shape == (40, (1 + 2 * 8 + 64) * 7 * 7) == (40, scat.n_features_out_) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0  # moduli, then log(1 + 10 S)
    raw = ScatteringFeatures(J=2, L=8, log=False).fit(x).transform(x)
    np.testing.assert_allclose(out, np.log1p(10 * raw), rtol=1e-4, atol=1e-5)
    assert clone(scat).get_params() == scat.get_params()
    assert scat.transform(x[:0]).shape == (0, scat.n_features_out_)
    with pytest.raises(ValueError, match="NaN"):
        scat.transform(np.full((2, 28, 28), np.nan, np.float32))


def test_scattering_reads_colour_as_grey():
    from pipelines.handcrafted.features import grey
    x, _ = colour_bars(6, seed=2, size=28)
    scat = ScatteringFeatures().fit(x)
    np.testing.assert_allclose(scat.transform(x), ScatteringFeatures().fit(grey(x)).transform(grey(x)), atol=1e-6)


def test_the_fused_vector_is_hog_then_scattering_and_the_weight_scales_only_scattering(images, tmp_path):
    from pipelines import get
    from pipelines.handcrafted.common import CachedExtractor
    from pipelines.handcrafted.features import HOGFeatures
    x, _ = images
    fused, scat = (get(name) for name in ("hog_scattering_svm", "scattering_svm"))
    union = fused.extractor(fused.config("cpu"), n_jobs=1)
    out = union.fit(x).transform(x)
    hog = HOGFeatures(signed=True).fit(x).transform(x)
    split = hog.shape[1]
    np.testing.assert_array_equal(out[:, :split], hog)
    # the runner caches each part: scattering_svm's scattering is reused, and the vector is the union's own
    _, scat_hit = CachedExtractor(scat.extractor(scat.config("cpu"), n_jobs=1), tmp_path)(x)
    union_cache = CachedExtractor(union, tmp_path)
    assert [union_cache._fn.check_call_in_cache(*union_cache._args(t, x)) for t in union_cache.parts] == [False, True]
    cached, hit = union_cache(x)
    assert (scat_hit, hit) == ("miss", "partial") and np.array_equal(cached, out) and cached.dtype == np.float32
    assert CachedExtractor(union, tmp_path)(x)[1] == "hit"
    one, two = (BlockScaler(split=split, weight=w).fit(out).transform(out) for w in (1.0, 2.0))
    np.testing.assert_allclose(two[:, :split], one[:, :split])
    np.testing.assert_allclose(two[:, split:], 2 * one[:, split:], rtol=1e-5, atol=1e-6)


def test_the_report_draws_the_wavelets_the_transform_uses():
    from pipelines.handcrafted.scattering import wavelets
    from pipelines.report.filters import scattering_row
    bank = wavelets(J=2, L=8)
    assert sorted((j, t) for j, t, _ in bank) == [(j, t) for j in range(2) for t in range(8)]
    fine = [w for j, _, w in bank if j == 0]
    assert all(w.shape == (11, 11) and np.abs(w).max() > 0 for w in fine)
    assert np.abs(fine[0] - fine[4]).max() > 0.5 * np.abs(fine[0]).max()  # a quarter turn apart: not the same filter
    label, shown = scattering_row(12)
    assert shown.shape == (12, 11, 11) and "J 2, L 8" in label


def test_capped_pca_keeps_its_setting_and_fits_a_set_smaller_than_it():
    from pipelines.handcrafted.features import CappedPCA
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(40, 100)), rng.normal(size=(300, 100))
    pca = CappedPCA(64, random_state=0)
    assert pca.fit(small).n_components_ == 40 and pca.transform(small).shape == (40, 40)
    assert pca.get_params()["n_components"] == 64  # the setting itself never changes
    assert clone(pca).fit(large).transform(large).shape == (300, 64)
