"""pip install -e .  (paddleclas goes in separately with --no-deps: see docs/install.md)."""
from pathlib import Path

from setuptools import find_packages, setup


def requirements():
    lines = Path(__file__).with_name("requirements.txt").read_text().splitlines()
    specs = [line.split("#", 1)[0].strip() for line in lines]
    return [spec for spec in specs if spec]


setup(
    name="paddle_dx",
    version="0.1.0",
    description="Transfer learning for small labelled medical image sets on PaddlePaddle",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["paddle_dx", "paddle_dx.*"]),
    package_data={"paddle_dx": ["**/*.html", "**/*.css", "**/*.js", "studies/papers.yaml"]},
    python_requires=">=3.9",
    install_requires=requirements(),
    license="Apache-2.0",
)
