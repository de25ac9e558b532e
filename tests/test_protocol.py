"""The protocol (PROTOCOL.md): statistics, the decision rules on synthetic result sets that must yield each
verdict for every claim (edge cases included), the validation split, stored tuning choices, provenance."""
from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, bars, run_script
from pipelines import PIPELINES, experiment
from pipelines.datasets import VALIDATION_SEED, VALIDATION_SIZE, Dataset, validation_split
from pipelines.analysis import claims
from pipelines.analysis.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, decide
from pipelines.experiments import experiment_tunings
from pipelines.analysis.stats import Estimate, difference, mean_ci, slope
from pipelines.store import COLUMNS, provenance
from pipelines.tuning import Tuning, chosen, pipeline_tunings
from pipelines.store import as_json

# --- statistics --------------------------------------------------------------------------------------------


def test_mean_ci_is_the_student_t_interval():
    est = mean_ci([0.80, 0.82, 0.84])
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n)
    assert est.mean == pytest.approx(0.82) and est.hi - est.mean == pytest.approx(half)
    assert not mean_ci([0.8]).has_interval and mean_ci([0.8]).n == 1


def test_difference_pairs_by_seed_when_seeds_match_else_welch():
    a, b = {0: 0.90, 1: 0.91, 2: 0.92}, {0: 0.85, 1: 0.87, 2: 0.86}
    paired = difference(a, b)
    assert paired.method == "paired t" and paired.lo < 0.05 < paired.hi
    welch = difference(a, {5: 0.85, 6: 0.86, 7: 0.87})
    assert welch.method == "Welch t" and welch.lo < 0.05 < welch.hi
    assert not difference({0: 0.9}, {0: 0.8}).has_interval


def test_a_spread_of_exactly_zero_gives_no_interval_and_no_verdict():
    constant = difference({0: 0.90, 1: 0.91, 2: 0.92}, {0: 0.85, 1: 0.86, 2: 0.87})  # the same difference each seed
    assert constant.mean == pytest.approx(0.05) and not constant.has_interval and constant.no_spread
    assert decide(constant) == (INCONCLUSIVE, f"{claims.NO_SPREAD} (n = 3)")
    assert not difference({0: 0.9, 1: 0.9}, {5: 0.8, 6: 0.8}, paired=False).has_interval  # Welch, no spread
    assert not mean_ci([0.9, 0.9, 0.9]).has_interval


def test_slope_recovers_a_line_and_its_sign():
    x = np.log10([500, 500, 2000, 2000, 8000, 8000])
    est = slope(x, 0.05 - 0.02 * x + np.array([0.001, -0.001] * 3))
    assert est.mean == pytest.approx(-0.02, abs=1e-3) and est.hi < 0


# --- the two-arm rule ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("effect, verdict", [
    (Estimate(0.02, 0.01, 0.03, 3), SUPPORTED),
    (Estimate(0.004, 0.003, 0.0045, 5), NOT_SUPPORTED),     # reliably positive but below delta
    (Estimate(-0.02, -0.03, -0.01, 3), NOT_SUPPORTED),      # reversed
    (Estimate(0.02, -0.01, 0.05, 3), INCONCLUSIVE),         # interval too wide
    (Estimate(0.004, 0.001, 0.009, 3), INCONCLUSIVE),       # above 0, mean below delta, CI reaches delta
    (Estimate(0.05, math.nan, math.nan, 1), INCONCLUSIVE),  # one seed: no interval
])
def test_decide(effect, verdict):
    assert decide(effect)[0] == verdict


def test_all_of_needs_every_part():
    s, n, i = (SUPPORTED, ""), (NOT_SUPPORTED, ""), (INCONCLUSIVE, "")
    assert claims.all_of([("a", *s), ("b", *s)])[0] == SUPPORTED
    assert claims.all_of([("a", *s), ("b", *n)])[0] == NOT_SUPPORTED
    assert claims.all_of([("a", *s), ("b", *i)])[0] == INCONCLUSIVE


# --- each experiment's claim on synthetic rows ---------------------------------------------------------------

def payload(name: str, rows: list[dict], **config) -> dict:
    return {"experiment": name, "rows": rows, "config": {"epochs": 16, "n_train": 1000, **config},
            "dataset": "fashion-mnist"}


def arms(values: dict[str, list[float]], **extra) -> list[dict]:
    return [{"arm": arm, "seed": s, "test_accuracy": v, "train_accuracy": v + 0.05, **extra}
            for arm, vs in values.items() for s, v in enumerate(vs)]


FEATURES = {
    SUPPORTED: {"pixels_svm": [0.83, 0.84, 0.835], "hog_svm": [0.90, 0.912, 0.905], "sift_fisher": [0.89, 0.88, 0.885]},
    NOT_SUPPORTED: {"pixels_svm": [0.90, 0.91, 0.905], "hog_svm": [0.85, 0.862, 0.855],  # pixels best
                    "sift_fisher": [0.89, 0.88, 0.885]},
    INCONCLUSIVE: {"pixels_svm": [0.83], "hog_svm": [0.90], "sift_fisher": [0.89]},  # one seed
}


@pytest.mark.parametrize("verdict", FEATURES)
def test_features_claim(verdict):
    v = experiment("features").verdict(payload("features", arms(FEATURES[verdict])))
    assert v.verdict == verdict, v.why


def activation_rows(relu: list[float], sigmoid: list[float]) -> list[dict]:
    rows = []
    for model in ("lenet", "cnn28"):
        for act, values in (("relu", relu), ("sigmoid", sigmoid)):
            rows += [{"arm": f"{model} {act}", "model": model, "activation": act, "lr": 0.1, "seed": s,
                      "test_accuracy": v} for s, v in enumerate(values)]
    return rows


@pytest.mark.parametrize("relu, sigmoid, verdict", [
    ([0.85, 0.86, 0.87], [0.70, 0.72, 0.71], SUPPORTED),
    ([0.70, 0.72, 0.71], [0.85, 0.86, 0.87], NOT_SUPPORTED),
    ([0.85, 0.70, 0.95], [0.80, 0.86, 0.79], INCONCLUSIVE),
])
def test_activation_claim(relu, sigmoid, verdict):
    assert experiment("activation").verdict(payload("activation", activation_rows(relu, sigmoid))).verdict == verdict


def gap_rows(gap_on: list[float], gap_off: list[float]) -> list[dict]:
    return [{"arm": f"dropout {p}", "seed": s, "test_accuracy": 0.85, "train_accuracy": 0.85 + g}
            for p, gaps in ((0.5, gap_on), (0.0, gap_off)) for s, g in enumerate(gaps)]


@pytest.mark.parametrize("on, off, verdict", [
    ([0.02, 0.03, 0.025], [0.07, 0.082, 0.074], SUPPORTED),
    ([0.07, 0.082, 0.074], [0.02, 0.03, 0.025], NOT_SUPPORTED),
    ([0.02, 0.09, 0.05], [0.07, 0.03, 0.08], INCONCLUSIVE),
])
def test_dropout_claim(on, off, verdict):
    assert experiment("dropout").verdict(payload("dropout", gap_rows(on, off))).verdict == verdict


@pytest.mark.parametrize("aug, plain, verdict", [
    ([0.88, 0.89, 0.885], [0.86, 0.871, 0.864], SUPPORTED),
    ([0.86, 0.871, 0.864], [0.88, 0.89, 0.885], NOT_SUPPORTED),
    ([0.88], [0.86], INCONCLUSIVE),
])
def test_augmentation_claim(aug, plain, verdict):
    rows = arms({"augmented": aug, "plain": plain})
    assert experiment("augmentation").verdict(payload("augmentation", rows)).verdict == verdict


def test_truncated_runs_leave_the_verdict_and_say_so():
    rows = arms({"augmented": [0.88, 0.89, 0.885], "plain": [0.86, 0.871, 0.864]})
    rows += [{"arm": "augmented", "seed": 9, "test_accuracy": 0.10, "truncated": True},  # would flip the verdict
             {"arm": "plain", "seed": 9, "test_accuracy": 0.99, "truncated": True}]
    v = experiment("augmentation").verdict(payload("augmentation", rows))
    assert v.verdict == SUPPORTED and "2 budget-truncated run(s) left out" in v.why


def test_a_dropped_run_drops_its_seed_at_every_size():
    """A failed arm at one training size takes its seed out of every size, so the arms at each size stay paired
    and a seed's slope is not read from a part of its sizes."""
    rows = curve_rows({500: [0.06, 0.05, 0.055, 0.05], 2000: [0.03, 0.035, 0.025, 0.03]})
    rows = [r for r in rows if not (r["arm"] == "cnn28" and r["seed"] == 3 and r["n_train"] == 2000)]  # it failed
    exp = {**payload("data", rows), "failed": [{"pipeline": "cnn28", "arm": "cnn28", "seed": 3, "n_train": 2000}]}
    v = experiment("data").verdict(exp)
    assert "3 stored runs in all" in v.why and "n = 3" in v.why  # seed 3's two runs at 500 images left out too


def curve_rows(gaps: dict[int, list[float]]) -> list[dict]:
    """hog_svm at 0.8 everywhere; cnn28 at 0.8 - gap, per size and seed (validation as test)."""
    rows = []
    for n, gs in gaps.items():
        for s, g in enumerate(gs):
            rows += [{"arm": "hog_svm", "n_train": n, "seed": s, "test_accuracy": 0.8, "validation_accuracy": 0.8},
                     {"arm": "cnn28", "n_train": n, "seed": s, "test_accuracy": 0.8 - g,
                      "validation_accuracy": 0.8 - g}]
    return rows


@pytest.mark.parametrize("gaps, verdict", [
    ({500: [0.06, 0.05, 0.055], 2000: [0.03, 0.035, 0.025], 8000: [0.0, 0.005, -0.005]}, SUPPORTED),
    ({500: [-0.02, -0.03, -0.025], 2000: [-0.03, -0.035, -0.025], 8000: [-0.04, -0.05, -0.03]}, NOT_SUPPORTED),
    # hand-crafted leads, but the gap grows at the end: not the closing the claim predicts
    ({500: [0.02, 0.025, 0.03], 2000: [0.03, 0.035, 0.025], 8000: [0.05, 0.06, 0.055]}, NOT_SUPPORTED),
    ({500: [0.06, 0.0, 0.1], 2000: [0.03, -0.02, 0.09], 8000: [0.04, -0.05, 0.1]}, INCONCLUSIVE),
])
def test_data_claim_uses_every_size(gaps, verdict):
    v = experiment("data").verdict(payload("data", curve_rows(gaps)))
    assert v.verdict == verdict, v.why


def test_data_claim_chooses_each_sides_best_on_validation_not_test():
    rows = curve_rows({500: [0.06, 0.05, 0.055], 2000: [0.03, 0.035, 0.025], 8000: [0.0, 0.005, -0.005]})
    # pixels_svm tops the test set everywhere but not the validation images: it must not be chosen
    rows += [{"arm": "pixels_svm", "n_train": r["n_train"], "seed": r["seed"], "test_accuracy": 0.99,
              "validation_accuracy": 0.5} for r in rows if r["arm"] == "hog_svm"]
    best, _ = experiment("data").gaps(pd.DataFrame(rows))
    assert set(best.handcrafted) == {"hog_svm"}
    assert experiment("data").verdict(payload("data", rows)).verdict == SUPPORTED


def test_anatomy_claim_reads_the_counts():
    rows = [{"layer": "Conv2d", "params": 10, "flops": 90, "flops_torch": 90, "forward_ms": 1.0},
            {"layer": "Linear", "params": 90, "flops": 10, "flops_torch": 10, "forward_ms": 1.0}]
    v = experiment("anatomy").verdict(payload("anatomy", rows))
    assert v.verdict == SUPPORTED and "equal torch's counter" in v.why
    rows[0]["params"], rows[0]["flops_torch"] = 1000, 1
    v = experiment("anatomy").verdict(payload("anatomy", rows))
    assert v.verdict == NOT_SUPPORTED and "DIFFER" in v.why


def test_an_experiment_not_run_is_inconclusive():
    v = experiment("dropout").verdict(None)
    assert v.verdict == INCONCLUSIVE and "--experiment dropout" in v.why


# --- learned against hand-crafted on the results table ---------------------------------------------------------

def table(rows: list[tuple], seconds: float = 100.0) -> pd.DataFrame:
    """(pipeline, preset, device, seed, accuracy, n_train, n_test, truncated) -> ok rows."""
    out = []
    for p, preset, device, seed, acc, n_tr, n_te, cut in rows:
        out.append({"pipeline": p, "family": PIPELINES[p].family, "preset": preset, "device": device, "seed": seed,
                    "dataset": "fashion-mnist", "test_accuracy": acc, "n_train": n_tr, "n_test": n_te,
                    "full_data": n_tr == 60000 and n_te == 10000, "truncated": cut, "notes": "",
                    "train_images_per_second": None, "status": "ok", "device_name": "a CPU",
                    "total_seconds": seconds, "concurrency": 1, "precision": "fp32"})
    return pd.DataFrame(out)


def seeds3(p, accs, preset="cpu", device="cpu", n_tr=60000, n_te=10000, cut=False):
    return [(p, preset, device, s, a, n_tr, n_te, cut) for s, a in enumerate(accs)]


VALIDATION = {"hog_kernel_svm": 0.92, "pixels_svm": 0.85, "hog_svm": 0.91, "cnn28": 0.94, "lenet": 0.80}


def learned_verdicts(rows, validation=VALIDATION, frame=None) -> dict:
    frame = table(rows) if frame is None else frame
    return {v.claim.split(". (", 1)[-1].rstrip(")"): v for v in claims.claim_learned_wins(frame, validation)}


CPU_CLAIM = "fashion-mnist, preset cpu, learned on cpu"
EQUAL_TIME = f"{CPU_CLAIM}, against hand-crafted rows of any preset given no more time"


def test_learned_wins_supported_not_supported_and_one_seed():
    hand = seeds3("hog_kernel_svm", [0.933, 0.934, 0.935]) + seeds3("pixels_svm", [0.84, 0.841, 0.842])
    win = learned_verdicts(hand + seeds3("cnn28", [0.945, 0.946, 0.944]))
    assert win[CPU_CLAIM].verdict == SUPPORTED
    assert win["paper preset: the chapter's recipes"].verdict == INCONCLUSIVE  # needs a GPU row
    lose = learned_verdicts(hand + seeds3("lenet", [0.80, 0.81, 0.82]))
    assert lose[CPU_CLAIM].verdict == NOT_SUPPORTED
    one = learned_verdicts(hand + seeds3("cnn28", [0.95]))
    assert one[CPU_CLAIM].verdict == INCONCLUSIVE


def test_learned_wins_ignores_subsets_truncation_and_other_presets():
    hand = seeds3("hog_kernel_svm", [0.933, 0.934, 0.935])
    rows = hand + seeds3("lenet", [0.80, 0.81, 0.82])
    rows += seeds3("alexnet", [0.99, 0.99, 0.99], n_tr=6000, n_te=1000)              # a subset: never enters
    rows += seeds3("cnn28", [0.99, 0.99, 0.99], cut=True)                            # truncated: never enters
    rows += seeds3("alexnet", [0.99, 0.99, 0.99], preset="paper", device="cuda")    # no paper hand-crafted row
    v = learned_verdicts(rows)
    assert v[CPU_CLAIM].verdict == NOT_SUPPORTED
    assert "`lenet`" in v[CPU_CLAIM].measured
    assert v["fashion-mnist, preset paper, learned on cuda"].why == claims.NOT_RUN


def test_each_familys_representative_is_chosen_on_validation_never_on_test():
    # hog_svm has the best test accuracy of the hand-crafted rows, hog_kernel_svm the best validation score
    hand = seeds3("hog_kernel_svm", [0.930, 0.931, 0.932]) + seeds3("hog_svm", [0.96, 0.961, 0.962])
    learned = seeds3("cnn28", [0.945, 0.946, 0.944]) + seeds3("lenet", [0.99, 0.99, 0.991])  # lenet: best test
    v = learned_verdicts(hand + learned)[CPU_CLAIM]
    assert "learned `cnn28`" in v.measured and "hand-crafted `hog_kernel_svm`" in v.measured
    assert v.verdict == SUPPORTED and "s per run" in v.measured  # each side's wall time is in the row
    assert "next by validation: `hog_svm`" in v.measured  # a new representative names the one it displaced
    alone = learned_verdicts(hand + seeds3("lenet", [0.99, 0.99, 0.991]), {"hog_svm": 0.9})[CPU_CLAIM]
    assert alone.verdict == INCONCLUSIVE and "no learned pipeline here has a stored validation score" in alone.why


def test_the_learned_row_meets_the_hand_crafted_side_given_no_more_time():
    cheap = table(seeds3("hog_kernel_svm", [0.930, 0.931, 0.932]), seconds=90)
    costly = table(seeds3("hog_kernel_svm", [0.950, 0.951, 0.952], preset="paper"), seconds=600)
    too_costly = table(seeds3("sift_fisher", [0.99, 0.99, 0.99], preset="paper"), seconds=5000)
    learned = table(seeds3("cnn28", [0.945, 0.946, 0.944]), seconds=630)
    v = learned_verdicts(None, {**VALIDATION, "sift_fisher": 0.999},
                         frame=pd.concat([cheap, costly, too_costly, learned], ignore_index=True))
    assert "at preset paper" in v[EQUAL_TIME].measured and "0.9510" in v[EQUAL_TIME].measured
    assert v[EQUAL_TIME].verdict == NOT_SUPPORTED and v[CPU_CLAIM].verdict == SUPPORTED  # cpu row: the cheap one
    other_cpu = pd.concat([cheap, costly.assign(device_name="another CPU"), learned], ignore_index=True)
    assert "at preset cpu" in learned_verdicts(None, frame=other_cpu)[EQUAL_TIME].measured


def test_a_diverged_learned_row_scores_chance_in_the_headline():
    rows = table(seeds3("hog_kernel_svm", [0.930, 0.931, 0.932]) + seeds3("cnn28", [0.95, 0.951, 0.1]))
    rows.loc[rows.test_accuracy == 0.1, "status"] = "diverged"
    assert learned_verdicts(None, frame=rows)[CPU_CLAIM].verdict != SUPPORTED  # it was supported with it dropped
    assert learned_verdicts(None, frame=rows[rows.status == "ok"])[CPU_CLAIM].verdict == SUPPORTED


def test_gpu_and_filter_claims():
    ok = table(seeds3("alexnet", [0.5], n_tr=6000, n_te=1000, cut=True)).assign(train_images_per_second=20.0,
                                                                                notes="budget")
    assert claims.claim_gpu(ok).verdict == INCONCLUSIVE
    gpu = pd.concat([ok, ok.assign(device="cuda", train_images_per_second=5000.0)])
    assert claims.claim_gpu(gpu).verdict == SUPPORTED
    assert claims.claim_gpu(gpu.assign(train_images_per_second=[20.0, 100.0])).verdict == NOT_SUPPORTED
    assert claims.claim_filters([]).verdict == INCONCLUSIVE  # no full-recipe row judged
    assert claims.claim_filters([{"share": 0.6, "baseline_share": 0.0}]).verdict == SUPPORTED
    assert claims.claim_filters([{"share": 0.1, "baseline_share": 0.0}]).verdict == NOT_SUPPORTED


def test_the_gpu_claim_compares_one_recipe_in_one_precision():
    cpu = table(seeds3("alexnet", [0.5, 0.5], n_tr=6000, n_te=1000)).assign(train_images_per_second=50.0)
    cpu.loc[1, ["precision", "train_images_per_second"]] = ["bf16-autocast", 120.0]
    gpu = table(seeds3("alexnet", [0.88], preset="paper", device="cuda")).assign(
        train_images_per_second=1000.0, precision="bf16-autocast")
    smoke = table(seeds3("alexnet", [0.1], preset="smoke", device="cuda")).assign(train_images_per_second=1e6)
    v = claims.claim_gpu(pd.concat([cpu, gpu, smoke], ignore_index=True))
    assert "CPU 120.0 img/s" in v.measured and "both in bf16-autocast" in v.measured and "(8×)" in v.measured
    assert v.verdict == NOT_SUPPORTED  # 8x: the fp32 CPU row (50 img/s, 20x) is not the one compared
    fp32_only = claims.claim_gpu(pd.concat([cpu.iloc[:1], gpu], ignore_index=True))
    assert "precisions differ" in fp32_only.measured and fp32_only.verdict == SUPPORTED


def test_without_a_gpu_row_the_cpu_speeds_are_given_per_precision_never_averaged():
    cpu = table(seeds3("alexnet", [0.46], n_tr=6000, n_te=1000, cut=True) + seeds3("alexnet", [0.88], preset="paper"))
    cpu = cpu.assign(train_images_per_second=[50.0, 150.0], precision=["fp32", "bf16-autocast"],
                     notes=["budget", "10 of 10 epochs complete"])
    v = claims.claim_gpu(cpu)
    assert v.verdict == INCONCLUSIVE and "100.0" not in v.measured
    assert "bf16-autocast 150.0 img/s (paper)" in v.measured and "fp32 50.0 img/s (cpu)" in v.measured
    assert v.measured.endswith("10 of 10 epochs complete")  # the full recipe's notes, not the budgeted row's


def test_the_filters_claim_takes_only_full_recipe_rows():
    rows = table(seeds3("alexnet", [0.6], n_tr=6000, n_te=1000) + seeds3("alexnet", [0.88], preset="paper"))
    rows = rows.assign(full_data=[True, True])  # a small dataset: the cpu preset's subset is all of it
    assert list(claims.full_recipe_rows(rows).preset) == ["paper"]


# --- the protocol's data, choices and records -------------------------------------------------------------------

def test_validation_split_is_fixed_stratified_and_inside_the_training_set():
    x, y = bars(1000, seed=3)
    xt, yt = bars(100, seed=4)
    data = Dataset(x, y, xt, yt, "bars", "test", tuple(map(str, range(10))))
    a, b = validation_split(data), validation_split(data)
    assert np.array_equal(a.x_test, b.x_test) and len(a.x_test) == min(VALIDATION_SIZE, 200)
    assert len(a.x_train) + len(a.x_test) == 1000
    rows = {r.tobytes() for r in x}
    assert all(r.tobytes() in rows for r in a.x_test)            # validation images are training images
    assert np.abs(np.bincount(a.y_test, minlength=10) / len(a.y_test) - np.bincount(y, minlength=10) / 1000).max() < 0.02


@pytest.mark.parametrize("tuning", pipeline_tunings(), ids=lambda t: t.name)
def test_cpu_presets_hold_the_stored_validation_choice(tuning):
    stored = json.loads(tuning.path.read_text())
    cfg = PIPELINES[tuning.pipeline].load().config("cpu")
    assert stored["grid"] == as_json(tuning.grid)
    assert stored.get("paired", False) == tuning.paired
    order = pipeline_tunings()
    later = [t.grid for t in order[order.index(tuning) + 1:] if t.pipeline == tuning.pipeline]
    held = [k for k in tuning.grid if not any(k in g for g in later)]  # a later grid chose the others again
    assert as_json({k: getattr(cfg, k) for k in held}) == {k: stored["choice"][k] for k in held}
    if "model_kwargs" in tuning.grid and "model_kwargs" not in held:  # ... but only the network arguments it varies
        varied = set()
        for grid in later:
            cands = [dict(c) for c in grid.get("model_kwargs", ())]
            varied |= {name for c in cands for name in c if len({d.get(name) for d in cands}) > 1}
        now = as_json(dict(cfg.model_kwargs))
        assert all(now.get(name) == value for name, value in stored["choice"]["model_kwargs"] if name not in varied)
    best = max(p["validation_accuracy"] for p in stored["points"])
    assert any(p["validation_accuracy"] == best and all(p[k] == v for k, v in stored["choice"].items())
               for p in stored["points"])


def test_a_paired_grid_takes_its_candidates_in_step():
    t = Tuning("x", "cnn28", {"epochs": (19, 26), "lr": (0.1, 0.2)}, paired=True)
    assert t.points() == [{"epochs": 19, "lr": 0.1}, {"epochs": 26, "lr": 0.2}]
    assert len(dataclasses.replace(t, paired=False).points()) == 4
    with pytest.raises(ValueError, match="as many candidates"):
        Tuning("x", "cnn28", {"epochs": (19, 26), "lr": (0.1,)}, paired=True).points()


def test_the_dropout_arms_switch_dropout_alone_and_keep_the_presets_network():
    cfg = PIPELINES["cnn28"].load().config("cpu")
    exp = experiment("dropout")
    arms = exp.arms(exp.sizes["cpu"], (0,), "cpu")
    for a in arms:
        kwargs = dict(a.config("cpu").model_kwargs)
        kwargs.pop("dropout")
        assert kwargs == {k: v for k, v in cfg.model_kwargs if k != "dropout"} and kwargs  # the preset's stem
    assert [dict(a.config("cpu").model_kwargs)["dropout"] for a in arms] == [0.5, 0.0]


def test_every_experiment_tuning_is_stored():
    for t in experiment_tunings():
        assert set(chosen(t.name)) == set(t.grid)


def test_protocol_states_the_constants_the_code_uses():
    text = (ROOT / "PROTOCOL.md").read_text()
    for needle in (f"δ = {claims.DELTA}", f"{VALIDATION_SIZE:,}", f"seed {VALIDATION_SEED}",
                   f"at least **{claims.MIN_SEEDS}** seeds", f"**{claims.FAST_SEEDS}** where an arm takes under "
                   f"{claims.FAST_ARM_SECONDS} seconds", f"{claims.GPU_SPEEDUP_MIN:g}×", f"{claims.FILTER_MARGIN * 100:.0f} points"):
        assert needle in text, needle
    assert "PROTOCOL.md" in (ROOT / "README.md").read_text()


def test_rows_record_commit_dirty_flag_truncation_and_full_data():
    assert {"git_commit", "git_dirty", "truncated", "full_data"} <= set(COLUMNS)
    prov = provenance()
    assert re.fullmatch(r"[0-9a-f]{4,40}", prov["git_commit"]) and prov["git_dirty"] in (True, False)


# --- the exercises' experiments --------------------------------------------------------------------------------

def epoch_rows(gain: dict[str, list[float]]) -> list[dict]:
    """Rows of the epochs experiment: each network at 0.8 at its recipe's length, + its seed's gain at 3×."""
    return [{"model": net, "multiple": m, "seed": s, "test_accuracy": 0.8 + (g if m == 3 else g / 2 if m == 2 else 0),
             "train_accuracy": 0.85} for net, gains in gain.items() for s, g in enumerate(gains) for m in (1, 2, 3)]


@pytest.mark.parametrize("verdict, gain", [
    (SUPPORTED, {"lenet": [0.10, 0.12, 0.11], "cnn28": [0.00, 0.01, 0.005]}),
    (NOT_SUPPORTED, {"lenet": [0.01, 0.012, 0.011], "cnn28": [0.01, 0.011, 0.012]}),  # the same gain
    (INCONCLUSIVE, {"lenet": [0.10], "cnn28": [0.0]}),
])
def test_epochs_claim(verdict, gain):
    v = experiment("epochs").verdict(payload("epochs", epoch_rows(gain)))
    assert v.verdict == verdict, v.why
    assert "lenet: 1× 0.8000" in v.measured


def cost_rows(full: list[float], losses: dict[str, list[float]]) -> list[dict]:
    exp = experiment("simpler_alexnet")
    rows = [{"kind": "cost", "point": p, "flops": 10 ** (9 - i), "params": 1000} for i, p in enumerate(exp.points)]
    for label in exp.points:
        rows += [{"kind": kind, "point": label, "seed": s, "n_classes": 10, "train_images_per_second": 100.0,
                  "test_accuracy": a - (0 if label == next(iter(exp.points)) else losses[label][s])}
                 for kind in ("budget", "epochs") for s, a in enumerate(full)]
    return rows


def test_a_cheaper_alexnet_keeps_accuracy_only_where_shown():
    exp = experiment("simpler_alexnet")
    labels = list(exp.points)[1:]
    small = [0.001, 0.0, 0.002]
    kept, _ = exp.keeps(pd.DataFrame(cost_rows([0.85, 0.86, 0.855], {p: small for p in labels})))
    assert kept == labels[-1]  # every step loses reliably less than δ
    big = {p: small if i < 2 else [0.05, 0.06, 0.055] for i, p in enumerate(labels)}
    assert exp.keeps(pd.DataFrame(cost_rows([0.85, 0.86, 0.855], big)))[0] == labels[1]  # the third step loses
    wide = {p: [0.0, 0.1, -0.1] for p in labels}  # undecided: not shown to keep
    assert exp.keeps(pd.DataFrame(cost_rows([0.85, 0.86, 0.855], wide)))[0] is None
    at_chance = exp.keeps(pd.DataFrame(cost_rows([0.10, 0.11, 0.10], {p: small for p in labels})))
    assert at_chance[0] is None and "chance" in at_chance[1]


def test_the_cheaper_alexnet_section_states_chance_from_the_accuracy_rows(tmp_path):
    from types import SimpleNamespace
    exp = experiment("simpler_alexnet")
    rows = cost_rows([0.85, 0.86, 0.855], {p: [0.001, 0.0, 0.002] for p in list(exp.points)[1:]})
    rows = [{**r, "validation_accuracy": r["test_accuracy"]} if "test_accuracy" in r else r for r in rows]
    assert "n_classes" not in rows[0]  # the cost rows come first and have no classes
    body = exp.body(SimpleNamespace(figures=tmp_path), payload("simpler_alexnet", rows, budget=15.0, n_eval=1000))
    assert "Chance is 0.1." in body


def test_the_batch_experiments_recipe_batch_run_serves_both_learning_rate_rules():
    exp = experiment("batch")
    grid = exp.grid("cnn28", "cpu")
    recipe = PIPELINES["cnn28"].load().config("cpu")
    assert [(b, lr) for b, rule, lr in grid if b == recipe.batch_size] == [(recipe.batch_size, recipe.lr)]
    assert (1024, exp.rules[1], recipe.lr * 1024 / recipe.batch_size) in grid
    rows = pd.DataFrame([{"kind": "accuracy", "model": "cnn28", "batch": b, "rule": r, "lr": lr, "seed": 0,
                          "test_accuracy": 0.5, "train_images_per_second": 10.0} for b, r, lr in grid])
    lines = exp.lines(rows)
    for rule in exp.rules:
        assert recipe.batch_size in set(lines.batch[lines.rule == rule])


def test_tuning_summary_names_every_stored_grid_and_its_training_size():
    """``bench/tune.py --summary``: one row per grid, the whole pool's size where a grid trains on all of it,
    network arguments written as name=value."""
    out = run_script("bench/tune.py", "--summary", timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {line.split("|")[1].strip(" `"): line for line in out.stdout.splitlines()[2:]}
    assert set(rows) == {t.name for t in pipeline_tunings() + experiment_tunings()}
    pool = json.loads((ROOT / "results" / "tuning" / "cnn28-regularisation.json").read_text())
    assert f"{pool['validation']['fit_pool_images']:,} images" in rows["cnn28-regularisation"]
    assert "dropout=0.0" in rows["cnn28-regularisation"]


@pytest.mark.parametrize("name", [n for n in PIPELINES if PIPELINES[n].family == "learned"])
def test_a_recipe_may_train_in_bf16_only_where_validation_allowed_it(name):
    from pipelines import get
    from pipelines.store import read_json, tuning_path
    stored = read_json(tuning_path(f"{name}-precision"))
    if get(name).bf16:
        assert stored and stored["bf16_allowed"], name
        assert stored["points"]["bf16"]["validation_accuracy"] >= stored["points"]["fp32"]["validation_accuracy"] \
            - claims.DELTA
    elif stored:
        assert not stored["bf16_allowed"], f"{name}: validated in bf16 but its flag is off"
