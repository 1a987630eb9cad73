"""Which packages and files go into a build; the project's metadata is in pyproject.toml.

The bundled weights and the examples stay at the top of the source tree (``weights/``, ``examples/``), where the docs,
the model card and the training configuration point. A wheel (``pip install .``, ``pip wheel .``, ``python -m build``)
carries them inside the package as the data-only packages ``flowcli._weights`` and ``flowcli._examples``, mapped onto
those folders; ``flowcli.weights.weights_dir()`` and ``flowcli.jobs.health.examples_dir()`` look there first and fall
back to the top-level folders (a source checkout or an editable install).
"""
from setuptools import find_packages, setup

# package -> (folder in the source tree, the files it ships)
DATA_PACKAGES = {
    "flowcli._weights": ("weights", ["*.pt", "*.md", "*.json", "*.toml"]),
    "flowcli._examples": ("examples", ["*.png", "*.flo", "*.mp4", "*.md", "*.py"]),
    "flowcli._examples.clip_flow": ("examples/clip_flow", ["*.png"]),
}

setup(
    packages=find_packages(include=["flowcli", "flowcli.*"]) + list(DATA_PACKAGES),
    package_dir={name: folder for name, (folder, _) in DATA_PACKAGES.items()},
    package_data={"flowcli": ["py.typed"], **{name: files for name, (_, files) in DATA_PACKAGES.items()}},
)
