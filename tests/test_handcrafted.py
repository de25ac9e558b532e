"""Hand-crafted side: the transformers behave as scikit-learn estimators, the Fisher vectors match
scikit-image's, every pipeline separates synthetic images, and the feature cache is hit."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from conftest import bars
from pipelines import PIPELINES
from pipelines.base import RunContext, select_device
from pipelines.datasets.idx import load_folder
from pipelines.handcrafted.features import (BagOfVisualWords, DenseSIFT, FisherVectors, HOGFeatures,
                                            PixelFeatures, fisher_vectors, pyramid_cells)

HANDCRAFTED = [n for n, e in PIPELINES.items() if e.family == "handcrafted"]


@pytest.fixture(scope="module")
def images():
    return bars(120, seed=11)


@pytest.fixture(scope="module")
def sift(images):
    x, _ = images
    return DenseSIFT(scale=2, step=8, patch=16).fit(x).transform(x)


@pytest.mark.parametrize("est", [PixelFeatures(), HOGFeatures(cell=7, nbins=6, signed=True),
                                 DenseSIFT(step=6), BagOfVisualWords(n_words=8, random_state=3),
                                 FisherVectors(n_components=4, pca_dim=8, random_state=3)])
def test_clone_and_get_params(est):
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est
    assert not any(k.endswith("_") for k in twin.get_params())


def test_pixel_and_hog_shapes(images):
    x, _ = images
    px = PixelFeatures().fit(x)
    assert px.transform(x).shape == (120, 784) and px.transform(x).dtype == np.float32
    hog = HOGFeatures().fit(x)
    out = hog.transform(x)
    assert out.shape == (120, hog.n_features_out_) == (120, 36 * 4 * 9) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.max() > 0


def test_dense_sift_is_a_full_grid(images, sift):
    assert sift.shape == (120, 36, 128) and sift.dtype == np.uint8
    assert sift.reshape(-1, 128).sum(axis=1).min() > 0  # every grid point got a descriptor
    assert DenseSIFT(scale=2, step=8, patch=16).fit(images[0]).n_keypoints_ == 36


def test_bovw_shape_normalisation_and_determinism(sift):
    a = BagOfVisualWords(n_words=16, pyramid=(1, 2), random_state=5).fit(sift).transform(sift)
    b = BagOfVisualWords(n_words=16, pyramid=(1, 2), random_state=5).fit(sift).transform(sift)
    assert a.shape == (120, 16 * 5) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(a, b)


def test_fisher_shape_and_determinism(sift):
    fv = FisherVectors(n_components=4, pca_dim=8, pyramid=(1, 2), spatial_xy=True, random_state=2)
    a = fv.fit(sift).transform(sift)
    b = clone(fv).fit(sift).transform(sift)
    assert a.shape == (120, 5 * (4 + 2 * 4 * 10)) and a.dtype == np.float32
    assert hasattr(fv, "gmm_") and hasattr(fv, "pca_")
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(a, b)


def test_vectorised_fisher_vector_equals_scikit_image():
    from skimage.feature import fisher_vector
    from sklearn.mixture import GaussianMixture
    rng = np.random.default_rng(0)
    desc = rng.random((6, 25, 7))
    gmm = GaussianMixture(5, covariance_type="diag", random_state=0).fit(desc.reshape(-1, 7))
    ours = fisher_vectors(desc, gmm)
    theirs = np.stack([fisher_vector(d, gmm) for d in desc])
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)


def test_pyramid_cells_partition_the_grid():
    cells = pyramid_cells(36, (1, 2))
    assert len(cells) == 5 and len(cells[0]) == 36
    assert sorted(np.concatenate(cells[1:]).tolist()) == list(range(36))
    with pytest.raises(ValueError, match="square"):
        pyramid_cells(35, (1,))


@pytest.mark.parametrize("name", HANDCRAFTED)
def test_pipeline_separates_synthetic_images(name, tiny_dir, tmp_path):
    pipeline = PIPELINES[name].load()
    ctx = RunContext("smoke", 0, select_device(False), tmp_path)
    out = pipeline.run(load_folder(tiny_dir), pipeline.config("smoke"), ctx)
    assert out.values["test_accuracy"] >= 0.95, f"{name}: {out.values['test_accuracy']}"
    assert out.values["n_train"] == 600 and out.values["n_test"] == 200
    assert out.values["feature_dim"] > 0 and out.values["classifier"]


@pytest.mark.parametrize("name", HANDCRAFTED)
def test_build_gives_a_working_sklearn_estimator(name, images):
    x, y = images
    model = PIPELINES[name].load().build(PIPELINES[name].load().config("smoke"), seed=0)
    assert model.fit(x[:100], y[:100]).predict(x[100:]).shape == (20,)


def test_feature_cache_is_hit_on_the_second_run(tiny_dir, tmp_path):
    pipeline = PIPELINES["hog_svm"].load()
    ctx = RunContext("smoke", 0, select_device(False), tmp_path)
    data = load_folder(tiny_dir)
    first = pipeline.run(data, pipeline.config("smoke"), ctx)
    second = pipeline.run(data, pipeline.config("smoke"), ctx)
    assert first.values["feature_cache"] == "miss" and second.values["feature_cache"] == "hit"
    assert first.values["test_accuracy"] == second.values["test_accuracy"]


def test_same_seed_same_accuracy(tiny_dir, tmp_path):
    pipeline = PIPELINES["sift_bovw"].load()
    data = load_folder(tiny_dir)
    accs = [pipeline.run(data, pipeline.config("smoke"), RunContext("smoke", 7, select_device(False),
                                                                     Path(tmp_path))).values["test_accuracy"]
            for _ in range(2)]
    assert accs[0] == accs[1]


def fitted_on(images, sift):
    """Each transformer with the input it takes (images or local descriptors), fitted."""
    x, _ = images
    return [(PixelFeatures().fit(x), x), (HOGFeatures(cell=7, nbins=6).fit(x), x), (DenseSIFT(step=8).fit(x), x),
            (BagOfVisualWords(n_words=8, n_sample=2000, random_state=0).fit(sift), sift),
            (FisherVectors(n_components=4, pca_dim=8, n_sample=2000, random_state=0).fit(sift), sift)]


def test_transformers_reject_bad_input_with_a_value_error(images, sift):
    for est, good in fitted_on(images, sift):
        bad_nan = good.astype(np.float32)
        bad_nan[0, 0, 0] = np.nan
        for bad, needle in ((bad_nan, "NaN"), (good[0], "shape"), (good.astype(object), "numeric"),
                            (good[:, :0], "non-empty")):
            with pytest.raises(ValueError, match=needle):
                est.transform(bad)
        with pytest.raises(ValueError, match="empty"):
            clone(est).fit(good[:0])


def test_an_empty_batch_transforms_to_zero_rows_of_the_right_width(images, sift):
    for est, good in fitted_on(images, sift):
        full, empty = est.transform(good[:3]), est.transform(good[:0])
        assert empty.shape == (0, *full.shape[1:]), type(est).__name__


# scikit-learn's estimator checks feed 2-D tabular data (n_samples, n_features); these transformers take 3-D
# stacks of images (n, h, w) or of local descriptors (n, keypoints, d), which no tag lets the checks generate.
NEEDS_2D_INPUT = {
    "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_estimator_sparse_tag",
    "check_estimators_dtypes", "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d",
    "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes",
}


@pytest.mark.parametrize("est", [PixelFeatures(), HOGFeatures(), DenseSIFT(), BagOfVisualWords(n_words=4),
                                 FisherVectors(n_components=2, pca_dim=4)], ids=lambda e: type(e).__name__)
def test_scikit_learn_estimator_checks_that_apply(est):
    """Every check that does not need 2-D tabular input passes (cloning, params, repr, tags, unfitted use...)."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    assert failed <= NEEDS_2D_INPUT, failed - NEEDS_2D_INPUT
    assert {"check_get_params_invariance", "check_set_params", "check_no_attributes_set_in_init",
            "check_estimator_cloneable", "check_parameters_default_constructible"} <= passed


def test_hog_on_colour_takes_the_channel_with_the_largest_gradient():
    from conftest import colour_bars
    x, _ = colour_bars(8, seed=3)
    only_red = np.zeros_like(x)
    only_red[..., 0] = x[..., 0]
    hog = HOGFeatures().fit(only_red)
    np.testing.assert_allclose(hog.transform(only_red), HOGFeatures().fit(x[..., 0]).transform(x[..., 0]), atol=1e-6)
    assert hog.transform(x).shape == (8, hog.n_features_out_)


def test_sift_reads_colour_images_as_grey():
    from conftest import colour_bars
    from pipelines.handcrafted.features import grey
    x, _ = colour_bars(4, seed=3)
    sift = DenseSIFT().fit(x)
    np.testing.assert_array_equal(sift.transform(x), DenseSIFT().fit(grey(x)).transform(grey(x)))


@pytest.mark.parametrize("name", ["pixels_svm", "hog_svm", "sift_bovw"])
def test_a_handcrafted_pipeline_runs_on_colour_images(name, tmp_path):
    from conftest import colour_bars
    from pipelines.datasets import Dataset
    (x_tr, y_tr), (x_te, y_te) = colour_bars(400, seed=1), colour_bars(100, seed=2)
    data = Dataset(x_tr, y_tr, x_te, y_te, name="colour-bars", source="test", class_names=tuple("0123456789"))
    pipeline = PIPELINES[name].load()
    ctx = RunContext("smoke", 0, select_device(False), tmp_path, dataset=data.name)
    out = pipeline.run(data, pipeline.config("smoke"), ctx)
    assert out.values["test_accuracy"] > 0.5  # ten classes: chance is 0.1


@pytest.mark.parametrize("labels", [np.arange(10), np.array(list("jihgfedcba"))])
def test_the_blas_rbf_prediction_is_libsvms(labels):
    """RbfSVC votes as libsvm does, on the same decision values: equal predictions, decision values to rounding;
    two classes go to libsvm itself. The kernel pipelines use it."""
    from sklearn.datasets import make_classification
    from sklearn.svm import SVC
    from pipelines import get
    from pipelines.handcrafted.rbf import RbfSVC
    x, y = make_classification(2500, 30, n_informative=12, n_classes=10, n_clusters_per_class=1, random_state=3)
    y = labels[y]
    fit, test = slice(0, 1500), slice(1500, None)
    ours = RbfSVC(C=3.0, gamma="scale").fit(x[fit], y[fit])
    theirs = SVC(C=3.0, gamma="scale", decision_function_shape="ovo").fit(x[fit], y[fit])
    assert np.array_equal(ours.predict(x[test]), theirs.predict(x[test]))
    np.testing.assert_allclose(ours.ovo_decision(x[test]), theirs.decision_function(x[test]), atol=1e-9)
    assert 0.3 < ours.score(x[test], y[test]) < 1.0  # a problem where votes disagree, not a trivial one
    two = y[fit] == labels[0]
    pair = RbfSVC(gamma="scale").fit(x[fit], two)
    assert np.array_equal(pair.predict(x[test]), SVC(gamma="scale").fit(x[fit], two).predict(x[test]))
    # what the vote does not cover goes to libsvm: break_ties, and a class libsvm dropped (no weight)
    ties = {"C": 3.0, "gamma": "scale", "break_ties": True}
    assert np.array_equal(RbfSVC(**ties).fit(x[fit], y[fit]).predict(x[test]),
                          SVC(**ties).fit(x[fit], y[fit]).predict(x[test]))
    weight = np.where(y[fit] == labels[2], 0.0, 1.0)
    assert np.array_equal(RbfSVC(gamma="scale").fit(x[fit], y[fit], sample_weight=weight).predict(x[test]),
                          SVC(gamma="scale").fit(x[fit], y[fit], sample_weight=weight).predict(x[test]))
    for name in ("hog_kernel_svm", "scattering_svm", "hog_scattering_svm"):
        assert isinstance(get(name).classifier(get(name).config("cpu"), 0), RbfSVC)
