"""Installable package for actionvlad_tf.

TensorFlow is chosen by extra, so that exactly one TensorFlow wheel is installed (the wheels overwrite
each other's `tensorflow` package): `[cpu]` takes the lighter `tensorflow-cpu`, `[gpu]` takes
`tensorflow[and-cuda]`, `[tf]` plain `tensorflow`. Without an extra, an already installed TensorFlow
is used.
"""

from setuptools import find_packages, setup

TENSORFLOW = ">=2.16,<2.23"  # TF 2.16 is the first with Keras 3; 2.21 is what PyPI serves for 3.11
# LiteRT and ONNX files (experiments/export.py --format=litert,onnx), each checked by its runtime.
# Lower bounds: the versions checked beside TF 2.21 (pip check clean; TF, protobuf, numpy unchanged).
EXPORT = ["ai-edge-litert>=2.3", "tf2onnx>=1.17", "onnxruntime>=1.32"]
SCRIPT_FOLDERS = ("experiments", "data_prep")  # actionvlad_tf.commands.SCRIPT_FOLDERS


setup(
    name="actionvlad_tf",
    version="0.1.0",
    description="ActionVLAD (CVPR 2017) in TensorFlow 2 / Keras 3, faithful to the original release",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The entry-point folders stay at the top of the tree and install as actionvlad_tf/experiments and
    # actionvlad_tf/data_prep (never as generic top-level packages); the `actionvlad` launcher runs
    # them from there (actionvlad_tf/commands.py says why this layout).
    packages=find_packages(include=["actionvlad_tf", "actionvlad_tf.*"])
    + [f"actionvlad_tf.{folder}" for folder in SCRIPT_FOLDERS],
    package_dir={f"actionvlad_tf.{folder}": folder for folder in SCRIPT_FOLDERS},
    # The shipped offline stand-in backbone (--backbone_weights=demo_standin) and its card; the flagfiles.
    package_data={
        "actionvlad_tf.zoo": ["*.weights.h5", "*.heads.npz", "*.json"],
        "actionvlad_tf.experiments": ["configs/*.flags"],
    },
    entry_points={"console_scripts": ["actionvlad = actionvlad_tf.commands:main"]},
    install_requires=[
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
        # TFDS imports it on every Python but declares it only below 3.9 (tensorflow/datasets#11212).
        "importlib_resources>=6",
        # tf.summary.scalar needs it; TF 2.21 wheels no longer depend on it.
        "tensorboard>=2.16",
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu{TENSORFLOW}"],
        "gpu": [f"tensorflow[and-cuda]{TENSORFLOW}"],
        "tf": [f"tensorflow{TENSORFLOW}"],
        # Data preparation on Apache Beam runners (data_prep/extract_*.py --runner).
        "beam": ["apache-beam>=2.60"],
        "export": EXPORT,
        "test": [
            *EXPORT,  # tests/test_portable.py
            "apache-beam>=2.60",  # the Beam DirectRunner tests
            "pytest>=8",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "import-linter>=2.1",  # tests/test_import_graph.py checks .importlinter's contracts
            "ruff>=0.6",  # tests/test_lint.py: lint and format check (ruff.toml)
            "jax>=0.4.30",  # the layer tests run under KERAS_BACKEND=jax too
        ],
    },
)
