"""Installable package for actionvlad_tf.

TensorFlow comes as `tensorflow` by default. Where `tensorflow-cpu` is already installed (the lighter
wheel, enough where no GPU is wanted), that one satisfies the requirement instead, so the two wheels
never end up side by side.
"""
from importlib import metadata

from setuptools import find_packages, setup


def _tensorflow_requirement():
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            metadata.version(dist)
            return f"{dist}>=2.16,<2.23"
        except metadata.PackageNotFoundError:
            continue
    return "tensorflow>=2.16,<2.23"


setup(
    name="actionvlad_tf",
    version="0.1.0",
    description="ActionVLAD (CVPR 2017) in TensorFlow 2 / Keras 3, faithful to the original release",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["actionvlad_tf", "actionvlad_tf.*"]),
    install_requires=[
        _tensorflow_requirement(),
        "keras>=3.3",
        "numpy>=1.26",
        "absl-py>=2.0",
        "h5py>=3.10",
        "scikit-learn>=1.3",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        # Exactly one OpenCV wheel: the contrib build is a superset that carries TV-L1 (cv2.optflow).
        "opencv-contrib-python-headless>=4.8",
        "tensorflow-datasets>=4.9",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
        ],
    },
)
