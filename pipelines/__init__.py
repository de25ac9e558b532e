"""The registries: every pipeline, dataset source and experiment by name, each name defined once, here.

Targets are imported lazily, so ``--only alexnet --gpu`` never imports OpenCV or scikit-image and ``--list``
imports nothing heavy. Adding a pipeline, a dataset source or an experiment is one module and one line here
(README, "Adding things").
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout: data/ (download cache), results/, PROTOCOL.md
FAMILIES = ("handcrafted", "learned")  # the two sides of the 2012 contrast; a pipeline's family is its entry's
PRESETS = ("smoke", "cpu", "paper")   # every pipeline's preset names, smallest to largest (experiment sizes too)


def load_target(target: str):
    """``"module:attribute"`` -> the attribute, imported on first use."""
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class PipelineEntry:
    family: str  # one of FAMILIES
    description: str
    target: str  # "module:Class"

    def load(self):
        return load_target(self.target)()


@dataclass(frozen=True)
class DatasetEntry:
    description: str
    target: str  # "module:function": the loader, called with the --data-dir given with it (or None)
    fingerprint: str = ""  # the content fingerprint (``Dataset.fingerprint``) data of this name must have; "": any

    def load(self, data_dir=None):
        return load_target(self.target)(data_dir)


PIPELINES: dict[str, PipelineEntry] = {
    "pixels_svm": PipelineEntry("handcrafted", "raw pixels into the same linear SVM (the features-matter control)",
                                "pipelines.handcrafted.pixels:PixelsSvm"),
    "hog_svm": PipelineEntry("handcrafted", "OpenCV HOG descriptors into a linear SVM",
                             "pipelines.handcrafted.hog:HogSvm"),
    "hog_kernel_svm": PipelineEntry("handcrafted", "OpenCV HOG into an exact RBF-kernel SVM (PCA-256 HOG in the cpu "
                                    "preset)", "pipelines.handcrafted.hog:HogKernelSvm"),
    "sift_bovw": PipelineEntry("handcrafted", "dense SIFT, k-means bag of visual words with a spatial pyramid, "
                               "linear SVM", "pipelines.handcrafted.sift:SiftBovw"),
    "sift_fisher": PipelineEntry("handcrafted", "dense RootSIFT, PCA, GMM, improved Fisher vectors, linear SVM",
                                 "pipelines.handcrafted.sift:SiftFisher"),
    "scattering_svm": PipelineEntry("handcrafted", "wavelet scattering (Bruna and Mallat; kymatio) into an exact RBF "
                                    "SVM (PCA in the cpu preset)", "pipelines.handcrafted.scattering:ScatteringSvm"),
    "hog_scattering_svm": PipelineEntry("handcrafted", "HOG and scattering fused, each block standardised, into an "
                                        "exact RBF SVM", "pipelines.handcrafted.scattering:HogScatteringSvm"),
    "lenet": PipelineEntry("learned", "d2l LeNet-5: sigmoid, average pooling, SGD lr 0.9, 28x28 input",
                           "pipelines.learned.lenet:LeNetPipeline"),
    "cnn28": PipelineEntry("learned", "a CNN on the 28x28 images: ReLU, max-pool, flips and crops, batch norm, "
                           "one-cycle SGD", "pipelines.learned.cnn28:Cnn28Pipeline"),
    "cnn28_fast": PipelineEntry("learned", "cnn28 built to reach a target soonest: shorter, with airbench's "
                                "ingredients kept where validation chose them", "pipelines.learned.cnn28_fast:Cnn28FastPipeline"),
    "alexnet": PipelineEntry("learned", "d2l AlexNet: 224x224 upsampled input, ReLU, dropout, SGD lr 0.01, batch 128",
                             "pipelines.learned.alexnet:AlexNetPipeline"),
}

DEFAULT_DATASET = "fashion-mnist"  # the suite's dataset; results written before rows named theirs were of it
DATASETS: dict[str, DatasetEntry] = {
    DEFAULT_DATASET: DatasetEntry(
        "Zalando's Fashion-MNIST, 60,000/10,000 28x28 grey images, 10 classes (the default; from --data-dir, "
        "$CVBENCH_DATA_DIR, data/fashion-mnist/, /usr/share/datasets/fashion-mnist/, else downloaded)",
        "pipelines.datasets.idx:fashion_mnist",
        # ``Dataset.fingerprint`` of the official arrays: computed from the Debian package's files, whose decompressed
        # bytes have the MD5s published for the official uncompressed files (f4a8712d..., 9018921c..., 8181f547...,
        # 15d48437...; their .gz files are recompressed, so those MD5s differ from the download's)
        fingerprint="51bad0352284eacb"),
    "digits": DatasetEntry("scikit-learn's 1,797 8x8 digits, offline, resized to 28x28, a fixed 75/25 split",
                           "pipelines.datasets.digits:load_digits"),
    "cifar10": DatasetEntry("CIFAR-10's official python batches, from --data-dir or downloaded (MD5 checked)",
                            "pipelines.datasets.cifar:cifar10"),
    "cifar100": DatasetEntry("CIFAR-100's official python batches, from --data-dir or downloaded (MD5 checked)",
                             "pipelines.datasets.cifar:cifar100"),
}

# The report's experiments, in the order of its sections ("module:Class"); each names its own arms.
EXPERIMENTS: dict[str, str] = {
    "data": "pipelines.experiments.data_curve:DataCurve",
    "features": "pipelines.experiments.features:Features",
    "activation": "pipelines.experiments.activation:Activation",
    "dropout": "pipelines.experiments.ablations:Dropout",
    "augmentation": "pipelines.experiments.ablations:Augmentation",
    "anatomy": "pipelines.experiments.anatomy:Anatomy",
    "roofline": "pipelines.experiments.roofline:Roofline",
    "lenet_ladder": "pipelines.experiments.lenet_ladder:LeNetLadder",
    "epochs": "pipelines.experiments.epochs:Epochs",
    "simpler_alexnet": "pipelines.experiments.simpler_alexnet:SimplerAlexNet",
    "batch": "pipelines.experiments.batch:BatchSize",
}


def get(name: str):
    """Instantiate the pipeline registered as ``name``."""
    return PIPELINES[name].load()


@functools.lru_cache(maxsize=None)
def experiment(name: str):
    """The experiment registered as ``name`` (one instance per process)."""
    return load_target(EXPERIMENTS[name])()


def family(name: str) -> str:
    """A registered pipeline's family (the one home of that fact)."""
    return PIPELINES[name].family
