"""Features matter: the same linear SVM on raw pixels, HOG and SIFT encodings (pixels are the control)."""
from __future__ import annotations

from ..analysis.claims import ALL_OF_RULE, TWO_ARM_RULE, all_of, decide
from ..analysis.stats import difference
from ..analysis.tables import aggregate, pm, seeds_of
from .base import FAST, Experiment, bar_section
from .engine import ExpSize, arm


class Features(Experiment):
    name, title = "features", "Features matter"
    description = "features matter: the same linear SVM on pixels, HOG and SIFT encodings"
    claim = "With the same linear classifier, better features (HOG, SIFT encodings) beat raw pixels."
    control = "pixels_svm"
    rule = f"each feature arm − `{control}`, paired by seed: {TWO_ARM_RULE}; combined: {ALL_OF_RULE}"
    sizes = {"smoke": ExpSize(600, (0, 1)), "cpu": ExpSize(10_000, FAST)}

    named = ("pixels_svm", "hog_svm", "sift_bovw", "sift_fisher")  # its arms: the pipelines of one linear SVM

    def arms(self, size, seeds, recipe):
        return [arm({"arm": n}, n, s, size.n_train) for s in seeds or size.seeds for n in self.named]

    def judge(self, rows, exp):
        agg = aggregate(rows, ["arm"])
        control = seeds_of(rows, "arm", self.control)
        parts = [(arm, *decide(difference(seeds_of(rows, "arm", arm), control)))
                 for arm in agg.arm if arm != self.control]
        return ("; ".join(f"{a.arm} {pm(a.test_accuracy_mean, a.test_accuracy_half)}" for a in agg.itertuples()),
                *all_of(parts))

    def body(self, inp, exp):
        return bar_section(inp, exp, ["arm"], lambda a: a.arm, "Same linear SVM, different features")
