"""Packaging details pyproject.toml cannot express: the top-level ``resources/`` folder (the demo
model and demo scans, kept where it is) ships inside the wheel as the package
``octviewer.demo_data``, read through importlib.resources (octviewer/resources.py)."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["octviewer", "octviewer.*", "trainer", "trainer.*"]) + ["octviewer.demo_data"],
    package_dir={"octviewer.demo_data": "resources"},
    package_data={"octviewer.demo_data": ["models/*.safetensors", "models/*.md", "samples/*.dcm",
                                          "samples/*.json", "keys/*.pub"]},
)
