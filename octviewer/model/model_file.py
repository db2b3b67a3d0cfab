"""Model files: safetensors weights plus JSON metadata, loaded without executing any code.

A model file is a single ``.safetensors`` file whose header metadata holds one JSON document
(``octviewer`` key), described and validated by ``meta.ModelMeta``. safetensors stores raw tensors
only, so opening a file cannot run code; a legacy ``.pt`` (trainer checkpoint) is accepted only
through ``torch.load(weights_only=True)``, which refuses pickled code.

Loading checks, in this order, so that nothing is built or allocated from an unchecked value:
the metadata (types and bounds of every field), then the tensor names and shapes against the
network the metadata describes (files from before the VF heads were fused are converted first),
then the weights' values (all finite).

Every file has a digest: SHA-256 over its validated metadata and every tensor as stored (name,
dtype, shape, bytes), written beside the metadata (``octviewer_digest``) and recomputed at each
load. It names exactly this model in the About box, the PDF and the CSVs, and a stored digest that
no longer matches the content means the file was changed after it was written (refused). An
optional Ed25519 signature over the digest (``octviewer_signature``, see ``signing``) says who
wrote it; ``LoadedModel.trust`` says whether that signer is trusted here.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ..core.files import FileRefused, file_kind, open_for_writing
from .archive import torch_archive_problem
from .meta import FORMAT, FORMAT_VERSION, ModelFileError, ModelMeta, ModelWriteError, default_meta, default_metadata
from .networks import build_network, upgrade_legacy_state
from .preprocess import Preprocess
from .signing import SignatureError, Trust, sign, verify

DIGEST_KEY = "octviewer_digest"
SIGNATURE_KEY = "octviewer_signature"

__all__ = ["FORMAT", "FORMAT_VERSION", "LoadedModel", "ModelFileError", "ModelMeta", "ModelWriteError",
           "attach_evaluation", "default_meta", "default_metadata", "load_model", "model_digest", "save_model",
           "sign_model_file"]


@dataclass(frozen=True)
class LoadedModel:
    """A network with its validated metadata. The Predictor never changes ``network``: it works on
    its own copy, so one LoadedModel can serve several Predictors (devices) at once."""

    network: torch.nn.Module
    meta: ModelMeta
    path: str = ""
    digest: str = ""  # SHA-256 of the metadata and the weights as stored (model_digest)
    trust: Trust = field(default_factory=lambda: Trust("unsigned"))

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

    @property
    def short_digest(self) -> str:
        """The digest as shown to people: enough to tell two models apart, short enough to read."""
        return f"sha256:{self.digest[:16]}" if self.digest else "not computed"


def model_digest(meta: ModelMeta, state: dict) -> str:
    """SHA-256 of the validated metadata (canonical JSON) and every tensor as stored, in name order."""
    h = hashlib.sha256(b"octviewer-model-digest-v1\0")
    text = json.dumps(meta.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    h.update(len(text).to_bytes(8, "little") + text)
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        head = f"{name}|{str(t.dtype).removeprefix('torch.')}|{','.join(map(str, t.shape))}".encode()
        data = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        h.update(len(head).to_bytes(8, "little") + head + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _write(path: Path, state: dict, meta: ModelMeta, private_key=None) -> None:
    """Atomically (temp file + fsync + rename), with the digest and, given a key, its signature."""
    digest = model_digest(meta, state)
    header = {"octviewer": meta.to_json(), DIGEST_KEY: digest}
    if private_key is not None:
        header[SIGNATURE_KEY] = json.dumps(sign(digest, private_key))
    existed = path.exists()
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # never through a link: safetensors' save_file followed a .part link and overwrote its target
            fd = open_for_writing(tmp)
        except FileRefused as exc:
            raise ModelFileError(path, f"{tmp.name} {exc}") from None
        try:
            with open(fd, "wb") as f:
                f.write(save(state, metadata=header))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:  # a full disk (ENOSPC, EFBIG), a read-only place: one line, not Python's words
        raise ModelWriteError(path, f"cannot be written ({exc.strerror or type(exc).__name__})"
                                    + ("; it is unchanged" if existed else "")) from None


#: What octviewer-train writes (float32, or float16 with --half) and what torch can hold a checkpoint in;
#: an attack run's float8 weight reached torch.isfinite, which does not know the type, as a foreign error.
WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_values(path, state: dict) -> None:
    """Weights must be finite, and batch-norm variances non-negative (a negative one is finite but
    turns every output into NaN)."""
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelFileError(path, f"weight '{k[:80]}' holds NaN or infinite values (corrupt or tampered file)")
        if k.endswith("running_var") and bool((v < 0).any()):
            raise ModelFileError(path, f"weight '{k[:80]}' holds negative variances (corrupt or tampered file)")


def save_model(path: str | os.PathLike, network: torch.nn.Module, meta: ModelMeta | dict, half: bool = False,
               sign_with=None) -> Path:
    """Validate, then write atomically (temp file + fsync + rename): a crash never leaves a
    half-written model file, and an invalid model is never written. ``sign_with``: an Ed25519
    private key that signs the file's digest (``signing.workstation_key()`` for Model > Retrain)."""
    path = Path(path)
    d = (meta.to_dict() if isinstance(meta, ModelMeta) else dict(meta)) | {"stored_half": bool(half)}
    checked = ModelMeta.from_dict(d, path)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
             for k, v in network.state_dict().items()}
    _check_values(path, state)
    _write(path, state, checked, sign_with)
    return path


def _stored(path: Path) -> tuple[dict, LoadedModel]:
    """The tensors of a model file exactly as stored, and the model, after a full load's checks."""
    model = load_model(path, "cpu")
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, model


def attach_evaluation(path: str | os.PathLike, evaluation: dict, sign_with=None) -> Path:
    """Store an evaluation on independent data in a model file's metadata (``evaluation``), so the
    model card shows it beside the figures of the model's own test split. The weights are copied as
    stored, to the bit; the file is rewritten atomically and only after the new metadata validates.
    The content changes, so an old signature cannot stay: the file is signed again with ``sign_with``
    or left unsigned."""
    path = Path(path)
    state, model = _stored(path)
    checked = ModelMeta.from_dict(model.meta.to_dict() | {"evaluation": evaluation}, path)
    _write(path, state, checked, sign_with)
    was = model.trust
    if sign_with is None and was.status != "unsigned":
        warnings.warn(f"{path.name}: the new evaluation changed the file, so its signature ({was.text()}) no longer "
                      "applies and was removed; sign it again (python -m octviewer.model.sign sign)", stacklevel=2)
    return path


def sign_model_file(path: str | os.PathLike, private_key) -> Path:
    """Sign a model file in place (weights and metadata unchanged, to the bit)."""
    path = Path(path)
    if path.is_symlink():  # the link was replaced by a signed copy and the file it named left unsigned
        raise ModelFileError(path, "is a symbolic link: sign the file it points to, by its own name")
    if not _looks_like_safetensors(path):
        raise ModelFileError(path, "only safetensors model files can be signed")
    state, model = _stored(path)
    _write(path, state, model.meta, private_key)
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


def _looks_like_safetensors(path: Path) -> bool:
    """By content, not by name: a safetensors file starts with its header's length (8 bytes, little
    endian) and the header's opening brace. A model renamed .pt, .SAFETENSORS or without a suffix was
    refused as "may contain executable code" (attack run 2); a .safetensors that is not one still goes
    to the safetensors reader, which names the problem."""
    if path.suffix.lower() == ".safetensors":
        return True
    if not path.is_file():  # a FIFO would block the read
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size


def check_torch_archive(path: Path) -> None:
    """``torch_archive_problem`` as a ModelFileError naming the file (--model, --resume)."""
    if problem := torch_archive_problem(path):
        raise ModelFileError(path, problem)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Read, validate and build a model; every problem is a ModelFileError naming the file."""
    path = Path(path)
    if not path.is_file():  # a FIFO or device is named for what it is, not "no such file" (attack run 3 F15)
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise ModelFileError(path, "no such model file") from None
        raise ModelFileError(path, f"this is {file_kind(mode)}, not a model file")
    header: dict = {}
    if _looks_like_safetensors(path):
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                if "octviewer" not in header:
                    raise ModelFileError(path, "safetensors file without octviewer metadata "
                                               "(not a model made by octviewer-train)")
                meta = ModelMeta.from_json(header["octviewer"], path)
                stored = {k: f.get_tensor(k) for k in f.keys()}  # bounded by the file size
                digest = model_digest(meta, stored)
                state = upgrade_legacy_state(stored)
                network = _build(path, meta, {k: tuple(v.shape) for k, v in state.items()})
        except ModelFileError:
            raise
        except (SafetensorError, OSError, ValueError, TypeError, RuntimeError, OverflowError) as exc:
            raise ModelFileError(path, f"not a readable safetensors model file ({type(exc).__name__}: "
                                       f"{str(exc)[:200]})") from exc
    else:
        check_torch_archive(path)
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
        meta = ModelMeta.from_dict(blob["meta"], path)
        digest = model_digest(meta, state)
        try:
            state = upgrade_legacy_state(state)
        except RuntimeError as exc:
            raise ModelFileError(path, f"the VF head weights do not fit together ({str(exc)[:120]})") from exc
        network = _build(path, meta, {k: tuple(v.shape) for k, v in state.items()})
    for k, v in state.items():
        if not (v.dtype in WEIGHT_DTYPES or (k.endswith("num_batches_tracked") and v.dtype == torch.int64)):
            raise ModelFileError(path, f"weight '{k[:80]}' has dtype {v.dtype}, not one a model is stored in "
                                       "(float16, bfloat16, float32, float64)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    _check_values(path, state)  # after the cast: a float64 1e300 is finite until it becomes float32
    network.to_empty(device="cpu")
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(path, f"the weights do not fit a {meta.architecture} network: {str(exc)[:300]}") from exc
    network.eval().to(device)
    return LoadedModel(network, meta, str(path), digest, _trust(path, header, digest))


def _trust(path: Path, header: dict, digest: str) -> Trust:
    """Check the stored digest and the signature against the content; who signed it, if anyone."""
    stored = header.get(DIGEST_KEY)
    if stored is not None and stored != digest:
        raise ModelFileError(path, "the file's digest does not match its weights and metadata: it was changed "
                                   "after it was written (damaged or edited)")
    block = header.get(SIGNATURE_KEY)
    try:
        trust = verify(digest, json.loads(block) if block is not None else None)
    except (ValueError, RecursionError) as exc:  # SignatureError, a block that is not JSON or nested 100k deep
        problem = str(exc) if isinstance(exc, SignatureError) else "the signature block is not valid JSON"
        raise ModelFileError(path, problem) from None
    if stored is None and "octviewer" in header and trust.status == "unsigned":  # a model file, not a checkpoint
        trust = replace(trust, digest_missing=True)
    return trust
