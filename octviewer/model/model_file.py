"""Model files: safetensors weights plus JSON metadata, loaded without executing any code.

A model file is a single ``.safetensors`` file whose header metadata holds one JSON document
(``octviewer`` key), described and validated by ``meta.ModelMeta``. safetensors stores raw tensors
only, so opening a file cannot run code; a legacy ``.pt`` (trainer checkpoint) is accepted only
through ``torch.load(weights_only=True)``, which refuses pickled code.

Loading checks, in this order, so that nothing is built or allocated from an unchecked value:
the metadata (types and bounds of every field), then the tensor names and shapes against the
network the metadata describes (files from before the VF heads were fused are converted first),
then the weights' values (all finite).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .meta import FORMAT, FORMAT_VERSION, ModelFileError, ModelMeta, default_meta, default_metadata
from .networks import build_network, upgrade_legacy_state
from .preprocess import Preprocess

__all__ = ["FORMAT", "FORMAT_VERSION", "LoadedModel", "ModelFileError", "ModelMeta", "attach_evaluation",
           "default_meta", "default_metadata", "load_model", "save_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A network with its validated metadata. The Predictor never changes ``network``: it works on
    its own copy, so one LoadedModel can serve several Predictors (devices) at once."""

    network: torch.nn.Module
    meta: ModelMeta
    path: str = ""

    def __post_init__(self):
        if not isinstance(self.meta, ModelMeta):
            object.__setattr__(self, "meta", ModelMeta.from_dict(self.meta, self.path or None))

    @property
    def architecture(self) -> str:
        return self.meta.architecture

    @property
    def preprocess(self) -> Preprocess:
        return self.meta.preprocess

    @property
    def vf_names(self) -> tuple[str, ...]:
        return self.meta.vf_names

    @property
    def name(self) -> str:
        return self.meta.name or Path(self.path).stem


def _check_values(path, state: dict) -> None:
    """Weights must be finite, and batch-norm variances non-negative (a negative one is finite but
    turns every output into NaN)."""
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelFileError(path, f"weight '{k[:80]}' holds NaN or infinite values (corrupt or tampered file)")
        if k.endswith("running_var") and bool((v < 0).any()):
            raise ModelFileError(path, f"weight '{k[:80]}' holds negative variances (corrupt or tampered file)")


def save_model(path: str | os.PathLike, network: torch.nn.Module, meta: ModelMeta | dict, half: bool = False) -> Path:
    """Validate, then write atomically (temp file + fsync + rename): a crash never leaves a
    half-written model file, and an invalid model is never written."""
    path = Path(path)
    d = (meta.to_dict() if isinstance(meta, ModelMeta) else dict(meta)) | {"stored_half": bool(half)}
    checked = ModelMeta.from_dict(d, path)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
             for k, v in network.state_dict().items()}
    _check_values(path, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        save_file(state, str(tmp), metadata={"octviewer": checked.to_json()})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def attach_evaluation(path: str | os.PathLike, evaluation: dict) -> Path:
    """Store an evaluation on independent data in a model file's metadata (``evaluation``), so the
    model card shows it beside the figures of the model's own test split. The weights are copied as
    stored, to the bit; the file is rewritten atomically and only after the new metadata validates."""
    path = Path(path)
    model = load_model(path, "cpu")  # checks the file as a load does
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    d = model.meta.to_dict() | {"evaluation": evaluation}
    checked = ModelMeta.from_dict(d, path)
    tmp = path.with_name(path.name + ".part")
    try:
        save_file(state, str(tmp), metadata={"octviewer": checked.to_json()})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _build(path, meta: ModelMeta, shapes: dict[str, tuple]) -> torch.nn.Module:
    """The network's structure without initialising (or allocating) weights: the file gives them all."""
    with torch.device("meta"):
        network = build_network(meta.architecture, vf_names=meta.vf_names, init="random", **meta.network_params)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    if set(shapes) != set(expected):
        missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
        raise ModelFileError(path, f"the weights do not fit a {meta.architecture} network (a file from another "
                                   f"architecture?): missing {missing[:3]}, unexpected {extra[:3]}")
    for k, shape in shapes.items():
        if tuple(shape) != expected[k]:
            raise ModelFileError(path, f"the weights do not fit a {meta.architecture} network: '{k[:80]}' has "
                                       f"shape {list(shape)[:8]}, the network needs {list(expected[k])}")
    return network


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Read, validate and build a model; every problem is a ModelFileError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "no such model file")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                if "octviewer" not in header:
                    raise ModelFileError(path, "safetensors file without octviewer metadata "
                                               "(not a model made by octviewer-train)")
                meta = ModelMeta.from_json(header["octviewer"], path)
                state = upgrade_legacy_state({k: f.get_tensor(k) for k in f.keys()})  # bounded by the file size
                network = _build(path, meta, {k: tuple(v.shape) for k, v in state.items()})
        except ModelFileError:
            raise
        except (SafetensorError, OSError, ValueError, TypeError, RuntimeError, OverflowError) as exc:
            raise ModelFileError(path, f"not a readable safetensors model file ({type(exc).__name__}: "
                                       f"{str(exc)[:200]})") from exc
    else:
        try:  # a trainer checkpoint: plain dict of tensors and JSON-able values
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFileError(path, "refused: not a weights-only file (it may contain executable code) "
                                       f"or it is corrupt ({type(exc).__name__})") from exc
        if not isinstance(blob, dict) or not isinstance(blob.get("model"), dict) or "meta" not in blob:
            raise ModelFileError(path, "not an octviewer model or checkpoint")
        state = dict(blob["model"])
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            raise ModelFileError(path, "the checkpoint's weights are not a plain dict of tensors")
        try:
            state = upgrade_legacy_state(state)
        except RuntimeError as exc:
            raise ModelFileError(path, f"the VF head weights do not fit together ({str(exc)[:120]})") from exc
        meta = ModelMeta.from_dict(blob["meta"], path)
        network = _build(path, meta, {k: tuple(v.shape) for k, v in state.items()})
    for k, v in state.items():
        if not (v.is_floating_point() or (k.endswith("num_batches_tracked") and v.dtype == torch.int64)):
            raise ModelFileError(path, f"weight '{k[:80]}' has dtype {v.dtype}, not a floating-point type")
    _check_values(path, state)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    network.to_empty(device="cpu")
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(path, f"the weights do not fit a {meta.architecture} network: {str(exc)[:300]}") from exc
    network.eval().to(device)
    return LoadedModel(network, meta, str(path))
