"""Model files: safetensors weights plus JSON metadata, loaded without executing any code.

A model file is a single ``.safetensors`` file whose header metadata holds one JSON document
(``octviewer`` key): architecture, preprocessing, VF indices with units and scaling, decision
threshold, class names, the scan patterns and geometry it was trained for, and provenance
(data summary, split seed, metrics, software versions, date, whether the data were synthetic).
safetensors stores raw tensors only, so opening a file cannot run code; a legacy ``.pt`` is
accepted only through ``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core import VF_INDICES
from .networks import ARCHITECTURES, build_network
from .preprocess import Preprocess

FORMAT = "octviewer-model"
FORMAT_VERSION = 1


class ModelFileError(Exception):
    """A model file cannot be used; the message names the file and the reason."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        super().__init__(f"{Path(self.path).name}: {problem}")


def software_versions() -> dict:
    import numpy
    import torchvision

    from .. import __version__
    return {"octviewer": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def default_metadata(architecture: str, vf_names=("vfi", "md", "psd"), preprocess: Preprocess | None = None,
                     **extra) -> dict:
    """The metadata every model file carries; the trainer fills in provenance and threshold."""
    from .networks import is_3d

    if preprocess is None:
        preprocess = Preprocess(name="volume_area_v1") if is_3d(architecture) else Preprocess()
    vf_names = tuple(vf_names) if architecture in ("mt", "semt") else ()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "network": {"vf_names": list(vf_names)},
        "preprocess": preprocess.to_dict(),
        "vf": {n: {"unit": VF_INDICES[n]["unit"], "range": list(VF_INDICES[n]["range"])} for n in vf_names},
        "vf_scaling": "(value - lo) / (hi - lo), clipped to [0, 1]; VFI % over [0, 100], MD dB over [-35, 5], "
                      "PSD dB over [0, 20]",
        "class_names": ["normal", "glaucoma"],
        "threshold": 0.5,
        "scan_patterns": ["volume"],
        "min_bscans": 8 if is_3d(architecture) else 1,
        "name": f"{architecture}-untrained",
        "synthetic_data": False,
        "provenance": {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       "software": software_versions()},
    }
    meta.update(extra)
    return meta


@dataclass
class LoadedModel:
    network: torch.nn.Module
    meta: dict
    path: str = ""

    @property
    def architecture(self) -> str:
        return self.meta["architecture"]

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess.from_dict(self.meta["preprocess"])

    @property
    def vf_names(self) -> tuple[str, ...]:
        return tuple(self.meta["network"]["vf_names"])

    @property
    def name(self) -> str:
        return self.meta.get("name", Path(self.path).stem)


def save_model(path: str | os.PathLike, network: torch.nn.Module, meta: dict, half: bool = False) -> Path:
    """Write atomically (temp file + rename): a crash never leaves a half-written model file."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
             for k, v in network.state_dict().items()}
    meta = dict(meta, stored_half=bool(half))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    save_file(state, str(tmp), metadata={"octviewer": json.dumps(meta)})
    os.replace(tmp, path)
    return path


def _read(path: Path) -> tuple[dict, dict]:
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
            from safetensors import safe_open
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(path, f"not a readable safetensors model file ({exc})") from exc
        if "octviewer" not in header:
            raise ModelFileError(path, "safetensors file without octviewer metadata "
                                       "(not a model made by octviewer-train)")
        return state, json.loads(header["octviewer"])
    try:  # a trainer checkpoint: plain dict of tensors and JSON-able values
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(path, "refused: not a weights-only file (it may contain executable code) "
                                   f"or it is corrupt ({type(exc).__name__})") from exc
    if not isinstance(blob, dict) or "model" not in blob or "meta" not in blob:
        raise ModelFileError(path, "not an octviewer model or checkpoint")
    return blob["model"], blob["meta"]


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    state, meta = _read(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(path, "not an octviewer model file")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(path, f"made by a newer octviewer (format {meta['format_version']}, "
                                   f"this version reads up to {FORMAT_VERSION}): please update")
    if meta.get("architecture") not in ARCHITECTURES:
        raise ModelFileError(path, f"unknown architecture {meta.get('architecture')!r}")
    params = {k: v for k, v in meta["network"].items() if k != "vf_names"}  # e.g. reg_channels
    try:
        network = build_network(meta["architecture"], vf_names=meta["network"]["vf_names"], init="random", **params)
    except TypeError as exc:
        raise ModelFileError(path, f"unknown network parameters {sorted(params)}: {exc}") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(path, f"the weights do not fit a {meta['architecture']} network "
                                   f"(a file from another architecture?): {str(exc)[:300]}") from exc
    network.eval().to(device)
    return LoadedModel(network, meta, str(path))
