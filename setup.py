"""Packaging beyond pyproject.toml: the embedded default model goes into the wheel.

`assets/default-model` (whatever it holds when the wheel is built: weights, configs, model card) is copied into the
built package as `stablematerials/default_model`, where `stablematerials.loading.default_model_path` finds it
after a plain `pip install .` or a wheel install. An editable install reads it from the checkout instead.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MODEL_SOURCE = Path(__file__).resolve().parent / "assets" / "default-model"
MODEL_TARGET = Path("stablematerials") / "default_model"


class BuildPyWithModel(build_py):
    """build_py, then the default model folder copied into the package (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not (MODEL_SOURCE / "model_index.json").is_file():
            return
        target = Path(self.build_lib) / MODEL_TARGET
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(MODEL_SOURCE, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        target = Path(self.build_lib) / MODEL_TARGET
        extra = [str(p) for p in target.rglob("*") if p.is_file()] if target.is_dir() else []
        return super().get_outputs(include_bytecode) + extra


setup(cmdclass={"build_py": BuildPyWithModel})
