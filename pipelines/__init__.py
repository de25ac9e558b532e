"""The registry: every pipeline's name, family, one-line description and where its class lives.

Classes are imported lazily, so ``--only alexnet --gpu`` never imports OpenCV or scikit-image, and
``--list`` imports nothing heavy. Adding a pipeline is one module and one line here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    family: str  # "handcrafted" or "learned"
    description: str
    target: str  # "module:Class"

    def load(self):
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)()


REGISTRY: dict[str, Entry] = {
    "pixels_svm": Entry("handcrafted", "raw pixels into the same linear SVM (the features-matter control)",
                        "pipelines.handcrafted.pixels:PixelsSvm"),
    "hog_svm": Entry("handcrafted", "OpenCV HOG descriptors into a linear SVM",
                     "pipelines.handcrafted.hog:HogSvm"),
    "hog_kernel_svm": Entry("handcrafted", "OpenCV HOG into an exact RBF-kernel SVM (PCA-256 HOG in the cpu preset)",
                            "pipelines.handcrafted.hog:HogKernelSvm"),
    "sift_bovw": Entry("handcrafted", "dense SIFT, k-means bag of visual words with a spatial pyramid, linear SVM",
                       "pipelines.handcrafted.sift:SiftBovw"),
    "sift_fisher": Entry("handcrafted", "dense RootSIFT, PCA, GMM, improved Fisher vectors, linear SVM",
                         "pipelines.handcrafted.sift:SiftFisher"),
    "lenet": Entry("learned", "d2l LeNet-5: sigmoid, average pooling, SGD lr 0.9, 28x28 input",
                   "pipelines.learned.lenet:LeNetPipeline"),
    "cnn28": Entry("learned", "a CNN on the 28x28 images: ReLU, max-pool, flips and crops, batch norm, "
                   "one-cycle SGD", "pipelines.learned.cnn28:Cnn28Pipeline"),
    "alexnet": Entry("learned", "d2l AlexNet: 224x224 upsampled input, ReLU, dropout, SGD lr 0.01, batch 128",
                     "pipelines.learned.alexnet:AlexNetPipeline"),
}


def get(name: str):
    """Instantiate the pipeline registered as ``name``."""
    return REGISTRY[name].load()
