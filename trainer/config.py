"""Training options, and the check that ``--resume`` continues the same run.

Every option that changes the trained weights or the exported decision is "result-changing";
only where files go and how progress is shown are not (``NOT_RESULT``). A resume compares all
result-changing options and the manifest's CONTENT hash (not its name: a clinic that edits its
manifest in place gets a new run, never the old weights with new provenance).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .manifest import content_hash


@dataclass
class Config:
    data: str = ""
    out: str = "runs/run"
    variant: str = "semt"
    epochs: int = 10
    stage1_epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # paper's alpha_j, keyed by VF index name; multiplied by each value of alpha_grid
    alpha: dict[str, float] = field(default_factory=lambda: {"vfi": 1.0, "md": 1.0, "psd": 1.0})
    alpha_grid: list[float] = field(default_factory=lambda: [1.0])  # >1 value: chosen on validation
    aggregation: str = "auto"  # VF per volume: auto (chosen on validation) | mean | median | central
    train_set: str = "all"  # all | part (only VF-labelled training volumes: the paper's "Part" rows)
    label_fraction: float = 1.0  # share of training patients whose glaucoma label is used (trainer/label_scarce.py)
    image_size: int = 224
    reg_channels: int = 128  # channels of each VF regression module (mt/semt)
    volume_shape: list[int] = field(default_factory=lambda: [64, 128, 64])  # 3D models: B-scans, depth, width
    init: str = "imagenet"  # imagenet | random | path to a ResNet18 state dict
    seed: int = 0  # training seed (initialisation, order, augmentation)
    split_seed: int | None = None  # patient split; None = seed
    device: str = "auto"
    bscans_per_volume: int | None = None  # subsample B-scans per volume per epoch (None = all)
    skip_bad: bool = False
    allow_pickle: bool = False  # only for trusted .npz files with Python-object fields
    resume: bool = False
    cache_dir: str | None = None
    half: bool = False
    progress_json: str | None = None
    synthetic: bool | None = None  # None: detect from the manifest's ``synthetic`` column
    report_paths: bool = False  # outputs name volumes by path instead of pseudonymous keys

    @property
    def the_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed


NOT_RESULT = ("out", "resume", "cache_dir", "progress_json", "report_paths")


class RunMismatch(ValueError):
    """--resume into a folder that holds a run with another configuration or manifest."""


def run_identity(cfg: Config) -> dict:
    """What a resumed run must share with the stopped one."""
    ident = {k: v for k, v in asdict(cfg).items() if k not in NOT_RESULT and k != "data"}
    if ident.get("label_fraction") == 1.0:  # the default: runs recorded before the option resume as before
        del ident["label_fraction"]
    ident["manifest_sha256"] = content_hash(cfg.data)
    return ident


def check_and_record(cfg: Config, out: Path, write: bool = True) -> dict:
    """Refuse a resume whose identity differs (naming what differs); record this run's identity."""
    ident = run_identity(cfg)
    previous = out / "config.json"
    if cfg.resume and previous.exists():
        try:
            old = json.loads(previous.read_text())
        except (OSError, ValueError) as exc:
            raise RunMismatch(f"{previous} is unreadable ({exc}); start without --resume") from None
        old_ident = old.get("identity", {})
        changed = [k for k in ident if json.dumps(old_ident.get(k)) != json.dumps(ident[k])]
        if changed:
            names = ["manifest content" if k == "manifest_sha256" else k for k in changed]
            raise RunMismatch(f"{out} holds a run with different {', '.join(names)}; "
                              "choose another output folder or start without --resume")
    if write:
        previous.write_text(json.dumps({"config": asdict(cfg), "identity": ident}, indent=2))
    return ident


class ConfigFileError(ValueError):
    """A --config file that cannot be used; the message names it."""


#: A YAML file of options is a few hundred bytes.
MAX_CONFIG_BYTES = 1 << 20


def read_config_file(path: Path) -> dict:
    """The options of a --config YAML file. Read as a settings file is (``core.files``): a FIFO
    blocked the command for good and a link to /dev/zero filled memory; YAML that is not a mapping
    of option names, or names no option, is an error line, not a traceback."""
    import yaml

    from octviewer.core.files import FileRefused, read_small_file

    try:
        values = yaml.safe_load(read_small_file(path, MAX_CONFIG_BYTES).decode("utf-8")) or {}
    except FileRefused as exc:
        raise ConfigFileError(f"--config {path}: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise ConfigFileError(f"--config {path}: not a readable YAML file ({type(exc).__name__})") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"--config {path}: expected option: value lines (a YAML mapping)")
    unknown = sorted(map(str, set(values) - {f.name for f in fields(Config)}))
    if unknown:
        raise ConfigFileError(f"--config {path}: unknown option(s) {', '.join(unknown)[:200]}")
    return values
