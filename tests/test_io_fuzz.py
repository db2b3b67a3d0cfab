"""Corrupted files: truncations and byte flips give VolumeReadError or a valid volume, nothing else.

Every reader is exercised through ``load_volume``. Two runs:

- hypothesis chooses offsets and flips, in this process under a memory cap (quick to shrink);
- a fixed mutated corpus (``test_mutated_corpus_in_a_guarded_process``) goes through a child
  process with a per-input timeout, a peak-RSS budget derived from each file's size and an
  address-space cap, so a hang or a blow-up fails the test instead of stalling or killing it.
"""

import json
import os
import resource
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from corpus import oct_like, seed_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octviewer import VolumeReadError, load_volume
from octviewer.io.limits import byte_budget


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return {k: p.read_bytes() for k, p in seed_files(tmp_path_factory.mktemp("seeds")).items()}


SUFFIX = {"dicom": ".dcm", "dicom_rle": ".dcm", "dicom_j2k": ".dcm", "npz": ".npz", "npy": ".npy", "tiff": ".tif",
          "vol": ".vol", "fds": ".fds", "fda": ".fda"}


def _check(tmp_path, kind, raw):
    path = tmp_path / f"fuzz{SUFFIX[kind]}"
    path.write_bytes(raw)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # a lying header must not allocate GBs: allow 3 GiB above what the process already maps
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 3 * 1024**3, hard))
    try:
        volume = load_volume(path)
        assert volume.data.ndim == 3
    except VolumeReadError as exc:
        assert path.name in str(exc)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("kind", list(SUFFIX))
@FUZZ
@given(data=st.data())
def test_truncation(tmp_path, seeds, kind, data):
    if kind not in seeds:
        pytest.skip("sample not available")
    raw = seeds[kind]
    cut = data.draw(st.integers(0, len(raw) - 1))
    _check(tmp_path, kind, raw[:cut])


@pytest.mark.parametrize("kind", list(SUFFIX))
@FUZZ
@given(data=st.data())
def test_byte_flips(tmp_path, seeds, kind, data):
    if kind not in seeds:
        pytest.skip("sample not available")
    raw = bytearray(seeds[kind])
    # most structure lives in the first kilobytes: bias flips there, but reach the whole file
    for _ in range(data.draw(st.integers(1, 8))):
        limit = data.draw(st.sampled_from([min(len(raw), 4096), len(raw)]))
        pos = data.draw(st.integers(0, limit - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    _check(tmp_path, kind, bytes(raw))


# -- the guarded corpus run ------------------------------------------------------------------------------
PER_INPUT_SECONDS = 20  # generous: the machine running the suite may be busy
BIG = [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00010000, 0x0000FFFF, 0]


def mutations(raw: bytes, rng: np.random.Generator, count: int):
    """Truncations, byte flips biased to the header, and size-like integers written over fields."""
    for k in range(count):
        data = bytearray(raw)
        kind = k % 3
        if kind == 0:
            yield bytes(data[: int(rng.integers(0, len(data)))])
            continue
        for _ in range(int(rng.integers(1, 6))):
            limit = min(len(data), 4096) if rng.random() < 0.7 else len(data)
            pos = int(rng.integers(0, limit))
            if kind == 1:
                data[pos] = int(rng.integers(0, 256))
            else:
                pos -= pos % 2
                value = int(rng.choice(BIG)).to_bytes(4, "little")
                data[pos:pos + 4] = value[: max(0, min(4, len(data) - pos))]
        yield bytes(data)


def build_corpus(root: Path, per_seed: int = 30) -> list[Path]:
    files = seed_files(root / "seeds")
    rng = np.random.default_rng(11)
    corpus = list(files.values())
    for kind, seed in files.items():
        for i, raw in enumerate(mutations(seed.read_bytes(), rng, per_seed)):
            path = root / f"{kind}_{i:02d}{seed.suffix}"
            path.write_bytes(raw)
            corpus.append(path)
    # not files at all, and folders
    os.mkfifo(root / "pipe.dcm")
    (root / "zero.vol").symlink_to("/dev/zero")
    (root / "empty.npz").write_bytes(b"")
    folder = root / "pngs"
    folder.mkdir()
    import cv2
    for i, bscan in enumerate(oct_like((4, 32, 32))):
        cv2.imwrite(str(folder / f"B{i}.png"), bscan)
    (folder / "B4.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    corpus += [root / "pipe.dcm", root / "zero.vol", root / "empty.npz", folder]
    # formats without a writer here: garbage and near-misses still must give VolumeReadError
    garbage = rng.integers(0, 256, 6000, dtype=np.uint8).tobytes()
    for name, head in [("x.e2e", b"CMDb\x00\x00\x00\x00"), ("Optic Disc Cube 200x200_1.img", b""),
                       ("scan.OCT", b""), ("scan.oct", b""), ("scan.xml", b"<HEYEX><BODY>")]:
        (root / name).write_bytes(head + garbage)
        corpus.append(root / name)
    samples = os.environ.get("OCTVIEWER_SAMPLES")
    xml_folder = Path(samples or "/nonexistent") / "eyepy_synthetic" / "heyex_xml" / "test_volume"
    if xml_folder.is_dir():  # a real HEYEX export: damaged copies of its XML
        import shutil
        text = next(xml_folder.glob("*.xml")).read_bytes()
        for i, raw in enumerate(mutations(text, rng, 9)):
            copy = root / f"heyex_{i}"
            shutil.copytree(xml_folder, copy)
            next(copy.glob("*.xml")).write_bytes(raw)
            corpus.append(copy)
    return corpus


class Worker:
    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), *sys.path]))
        self.proc = subprocess.Popen([sys.executable, "-m", "corpus.fuzz_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert json.loads(self._line(120))["ready"]

    def _line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline() or None

    def load(self, path: Path):
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        return self._line(PER_INPUT_SECONDS)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def test_mutated_corpus_in_a_guarded_process(tmp_path):
    corpus = build_corpus(tmp_path)
    problems, outcomes = [], {"ok": 0, "refused": 0}
    worker = Worker()
    try:
        for path in corpus:
            line = worker.load(path)
            if line is None:
                problems.append(f"{path.name}: hung or crashed (no answer in {PER_INPUT_SECONDS} s)")
                worker.close()
                worker = Worker()
                continue
            result = json.loads(line)
            stored = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else \
                (path.stat().st_size if path.is_file() else 0)
            budget = byte_budget(stored) + 64 * 2**20
            if result["outcome"] == "foreign":
                problems.append(f"{path.name}: {result['detail']}")
            elif result["outcome"] == "refused" and not any(
                    name in result["detail"] for name in [path.name, *(f.name for f in path.glob("*"))]):
                problems.append(f"{path.name}: message does not name the file: {result['detail']}")
            if result["rss_growth"] > budget:
                problems.append(f"{path.name}: peak RSS grew {result['rss_growth'] / 2**20:.0f} MiB, "
                                f"budget {budget / 2**20:.0f} MiB")
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    finally:
        worker.close()
    assert not problems, "\n".join(problems)
    assert outcomes["refused"] > len(corpus) // 3 and outcomes["ok"] >= 10  # the corpus does exercise both
