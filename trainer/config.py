"""Training options, and the check that ``--resume`` continues the same run.

Every option that changes the trained weights or the exported decision is "result-changing";
only where files go and how progress is shown are not (``NOT_RESULT``). A resume compares all
result-changing options and the manifest's CONTENT hash (not its name: a clinic that edits its
manifest in place gets a new run, never the old weights with new provenance).
"""

from __future__ import annotations

import json
import math
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
        from octviewer.core.files import read_small_file

        try:  # as a settings file: a link to /dev/zero read 3.5 GB in 5 s, a FIFO blocked (attack run 5, F20)
            old = json.loads(read_small_file(previous, MAX_CONFIG_BYTES))
        except (OSError, ValueError) as exc:  # FileRefused is a ValueError
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
    of option names, or names no option, is an error line, not a traceback. YAML aliases are refused:
    a 422-byte file nesting them 9 deep expanded to 9^9 numbers and 11.8 GB (attack run 5, F11).
    The text is read as the PACS settings are (UTF-8 or UTF-16 with its BOM): Notepad's "Unicode" was
    refused as "(UnicodeDecodeError)" (attack run 6, A6-5). A key given twice is refused, as pacs.json
    and model metadata refuse one: PyYAML kept the last, so the ``epochs: 1`` a reader saw further up
    was not what ran (A6-4). A number int() refuses (5000 digits) ended in PyYAML's traceback: now an
    error line naming the option, the number unquoted (A6-13)."""
    import yaml

    from octviewer.core.files import FileRefused, read_small_file, settings_text

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise ConfigFileError(f"--config {path}: YAML aliases (*name) are not allowed; write the values out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen = set()  # a set: `k in keys[:i]` took 98 s over 60,000 keys (review H36, item 6)
            for key in (k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)):
                if key in seen:
                    raise ConfigFileError(f"--config {path} gives {key[:40]!r} twice; give it once")
                seen.add(key)
            for key_node, value_node in node.value:  # built here (and kept) to name the key of a bad value
                try:
                    self.construct_object(value_node, deep=True)
                except ConfigFileError:
                    raise
                except ValueError as exc:  # int() of 5000 digits, a 30th of February; ConstructorError is no ValueError
                    name = str(getattr(key_node, "value", "?"))[:40]
                    what = "a number too long to be an option" if "digits" in str(exc) else "not a possible value"
                    raise ConfigFileError(f"--config {path}: the value of {name!r} is {what}") from None
            return super().construct_mapping(node, deep)

    try:
        text = settings_text(read_small_file(path, MAX_CONFIG_BYTES))
        values = yaml.load(text, Loader=NoAliasLoader) or {}  # noqa: S506 (a SafeLoader)
    except FileRefused as exc:
        raise ConfigFileError(f"--config {path}: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"--config {path}: not UTF-8 text (save it as UTF-8)") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigFileError(f"--config {path}: not a readable YAML file ({type(exc).__name__})") from None
    except ConfigFileError:
        raise
    except ValueError:  # a number too long for int() outside a mapping of options
        raise ConfigFileError(f"--config {path}: holds a number too long to be an option") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"--config {path}: expected option: value lines (a YAML mapping)")
    unknown = sorted(map(str, set(values) - {f.name for f in fields(Config)}))
    if unknown:
        raise ConfigFileError(f"--config {path}: unknown option(s) {', '.join(unknown)[:200]}")
    return values


#: (least, most) of the whole-number options; None: no bound. Sizes are those a model file may hold
#: (``octviewer.model.meta``), so a run is refused before it trains, not at its save (attack run 5, F12).
_WHOLE = {"epochs": (1, 100_000), "stage1_epochs": (0, 100_000), "batch_size": (1, 65_536), "image_size": (16, 512),
          "reg_channels": (1, 1024), "seed": (0, None), "split_seed": (0, None), "bscans_per_volume": (1, None)}
#: (least, most, least excluded) of the number options
_NUMBER = {"lr": (0.0, 10.0, True), "weight_decay": (0.0, 10.0, False), "label_fraction": (0.0, 1.0, True)}
_CHOICES = {"aggregation": ("auto", "mean", "median", "central"), "train_set": ("all", "part")}
_MAY_BE_NONE = {"stage1_epochs", "split_seed", "bscans_per_volume", "cache_dir", "progress_json", "synthetic"}
MAX_ALPHA_GRID = 100  # each value trains a second stage


def init_problem(init: str) -> str:
    """Why ``--init`` (a weights file; "imagenet" and "random" name none) cannot be loaded, or "": the
    network builder's own look came only after the manifest check and the decode cache (17 s), and it
    called a FIFO "not found" (attack run 11, A11-10). The check is the one torch.load's callers make
    (``torch_archive_problem``: opened as a scan is, never blocking; a deflated archive refused)."""
    if init in ("imagenet", "random"):
        return ""
    from octviewer.model.archive import torch_archive_problem

    return torch_archive_problem(Path(init))


def checked_values(values: dict) -> dict:
    """``values`` (from --config and the command line) with every option's type and range checked, before
    any work; ConfigFileError naming the first bad option. Why: a batch size of 0, a NaN learning rate or
    ``epochs: ten`` ended in tracebacks after the manifest was read, an image size of 8 was refused only
    after training, and a huge ``alpha_grid`` filled memory (attack run 5, F11, F12). Numbers written as
    text (PyYAML reads ``1e-3`` as text) are taken when they read as finite numbers."""
    from octviewer.model import ARCHITECTURES
    from octviewer.model.meta import MAX_VOLUME_VOXELS, SIZE_BOUNDS, VOLUME_AXIS_BOUNDS

    def bad(name, value, what):
        raise ConfigFileError(f"--{name.replace('_', '-')} must be {what}, got {value!r:.40}")

    def whole(name, value, lo, hi):
        if isinstance(value, bool) or not isinstance(value, int):
            bad(name, value, "a whole number")
        if value < lo or (hi is not None and value > hi):
            bad(name, value, f"at least {lo}" + (f" and at most {hi}" if hi is not None else ""))
        return value

    def number(name, value, lo, hi, lo_open):
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            value = float(value)
        except (ValueError, OverflowError):
            bad(name, value, "a number")
        if not math.isfinite(value) or value < lo or (lo_open and value == lo) or value > hi:
            bad(name, value, f"a number {'above' if lo_open else 'from'} {lo:g} up to {hi:g}")
        return value

    out = dict(values)
    kinds = {f.name: str(f.type) for f in fields(Config)}
    bounds = dict(_WHOLE, image_size=SIZE_BOUNDS)
    for name, value in values.items():
        if value is None and name in _MAY_BE_NONE:
            continue
        if name in bounds:
            whole(name, value, *bounds[name])
        elif name in _NUMBER:
            out[name] = number(name, value, *_NUMBER[name])
        elif kinds[name].startswith("bool"):
            if not isinstance(value, bool):
                bad(name, value, "true or false")
        elif name == "alpha":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                bad(name, value, "NAME=VALUE pairs (a mapping of VF index names to numbers)")
            out[name] = {k: number(name, v, 0.0, 1e6, False) for k, v in value.items()}
        elif name == "alpha_grid":
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_ALPHA_GRID:
                bad(name, f"{type(value).__name__} of {len(value) if isinstance(value, list) else 1}",
                    f"a list of 1 to {MAX_ALPHA_GRID} numbers")
            out[name] = [number(name, v, 0.0, 1e6, False) for v in value]
        elif name == "volume_shape":
            if not isinstance(value, list) or len(value) != 3:
                bad(name, value, "3 whole numbers (B-scans, depth, width)")
            for v in value:
                whole(name, v, *VOLUME_AXIS_BOUNDS)
            if math.prod(value) > MAX_VOLUME_VOXELS:
                bad(name, value, f"at most {MAX_VOLUME_VOXELS} voxels in all")
        elif not isinstance(value, str):
            bad(name, value, "text")
        elif name == "variant" and value not in ARCHITECTURES:
            bad(name, value, "one of " + ", ".join(ARCHITECTURES))
        elif name == "init" and (problem := init_problem(value)):
            raise ConfigFileError(f"--init {value:.200}: {problem}")
        elif value not in _CHOICES.get(name, (value,)):
            bad(name, value, "one of " + ", ".join(_CHOICES[name]))
    return out
