"""Screening an archive with every core of a machine, and with every machine of a Dask cluster.

A scan's work has three parts that want different things: decoding (JPEG 2000: seconds of CPU,
one scan per process), the network (one model per device, fed one volume after another) and the
structure measurement (CPU, NumPy). ``run_local`` gives each part what it wants on one machine:

- scan workers are processes; each reads a scan, runs ``analyse_scan`` on it (the one rule: gate,
  network, measurement) and returns what the command writes for it;
- the network runs in the parent, the one model of this machine, behind ``ModelServer``: a worker's
  ``RemotePredictor`` sends the decoded volume over a local socket and waits for the Prediction,
  while the other workers decode and measure. So the model is loaded once, the device is never
  shared between two copies of it, and whatever stage is slowest has work waiting.

``run_cluster`` sends the same work to a Dask distributed cluster (``pip install
"octviewer[cluster]"``; README: "Screening on a cluster"): each worker process keeps one
Predictor (one model per process: start one worker process per GPU, or per machine on CPUs, with
as many threads as it has cores) shared by its threads under a lock, so decoding and measuring go
on beside the network there too. Inputs, the model file and ``--cam-out`` must be on storage every
worker can read.

Results come back in input order whatever finishes first, so the command's CSV is the same as a
single-process run's.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from multiprocessing.connection import Client, Listener

import numpy as np

from ..core import BatchResult


@dataclasses.dataclass(frozen=True)
class PredictorSpec:
    """How a cluster worker builds its Predictor: the model file (a path every worker can read)."""
    model: str
    device: str = "auto"
    precision: str = "auto"

    def build(self):
        from ..model import Predictor

        return Predictor(self.model, device=self.device, precision=self.precision)


def model_digest(predictor) -> str:
    """The model's part of the results store's key, worked out once in the parent."""
    from .store import model_identity

    return model_identity(predictor).split(":")[0]


class ModelServer:
    """The one model of this machine, answering scan workers over a local socket (Unix domain socket,
    Windows named pipe) with a random key: one prediction at a time, in the order asked."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.authkey = os.urandom(32)
        self._listener = Listener(authkey=self.authkey)
        self.address = self._listener.address
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="model-server", daemon=True).start()

    def identity(self) -> tuple:
        """What a worker's RemotePredictor needs: address, key and what the results store keys on."""
        p = self.predictor
        return self.address, self.authkey, model_digest(p), p.precision, p.device.type, p.model.name

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                return
            except Exception:  # noqa: BLE001 - a caller without the key: refused, the server goes on
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:
        with conn:
            while True:
                try:
                    volume, first = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    with self._lock:
                        self.predictor.check(volume)
                        answer = ("ok", self.predictor.predict(volume, first=first))
                except Exception as exc:  # noqa: BLE001 - the worker raises it where analyse_scan expects it
                    answer = ("error", exc)
                try:
                    conn.send(answer)
                except Exception as exc:  # noqa: BLE001 - an exception that does not pickle: its text
                    conn.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {exc}")))

    def close(self) -> None:
        self._closed = True
        self._listener.close()


class _Model:
    """What the results store reads of a model (its digest) and what messages name (its name)."""

    def __init__(self, digest: str, name: str):
        self.digest, self.name = digest, name


class _Device:
    def __init__(self, type_: str):
        self.type = type_


class RemotePredictor:
    """A Predictor as ``analyse_scan`` sees it, in a scan worker: the network runs on the model server."""

    def __init__(self, address, authkey: bytes, digest: str, precision: str, device_type: str, name: str):
        self._conn = Client(address, authkey=authkey)
        self.model = _Model(digest, name)
        self.precision, self.device = precision, _Device(device_type)

    def check(self, volume) -> None:
        """The server checks before predicting (``ScanNotSupported`` comes back from ``predict``)."""

    def predict(self, volume, first=None, on_batch=None, progress=None, cancel=None):
        from ..core import Cancelled

        if cancel is not None and cancel.is_set():
            raise Cancelled()
        self._conn.send((dataclasses.replace(volume, patient_id=None), first))  # the network needs no identifier
        status, value = self._conn.recv()
        if status != "ok":
            raise value
        n = value.n_bscans
        if on_batch is not None:
            on_batch(BatchResult(np.arange(n), value.bscan_probability, dict(value.bscan_vf), value.cam))
        if progress is not None:
            progress(n, n)
        return value


_remote: RemotePredictor | None = None


def _start_worker(identity: tuple) -> None:
    global _remote
    _remote = RemotePredictor(*identity)


def _on_local_worker(work: Callable, item):
    return work(item, _remote)


def run_local(work: Callable, items: Iterable, predictor, workers: int) -> Iterator:
    """``work(item, predictor)`` for every item in ``workers`` scan processes, the network in this
    process; results in input order. ``work`` must pickle (a module-level function or a dataclass).

    A scan process that dies (SIGKILL, the OOM killer, a decoder that crashes) breaks the whole pool:
    every scan in flight raised BrokenProcessPool, which ended ``octviewer-predict --workers 2`` in a
    traceback with only the CSV header written (attack run 3, F28). Now the results already made are
    kept, the first unfinished scan is run again alone in a fresh process, and the rest go on in a
    fresh pool. A scan that kills its process when alone is the culprit: ``work.lost(item)`` gives its
    result (a failed row). Each break settles at least one scan, so the run always ends."""
    pending = list(items)
    if not pending:
        return
    server = ModelServer(predictor)
    try:
        while pending:
            made, broken_at = {}, None
            for k, result in _pool_results(server, work, pending, workers, made):
                if result is _BROKEN:
                    broken_at = k
                    break
                yield result
            if broken_at is None:
                return
            item = pending[broken_at]
            [(_, alone)] = list(_pool_results(server, work, [item], 1, {}))
            yield work.lost(item) if alone is _BROKEN else alone
            pos = broken_at + 1
            while pos in made:  # results the broken pool had made in time
                yield made[pos]
                pos += 1
            pending = pending[pos:]
    finally:
        server.close()


_BROKEN = object()


def _pool_results(server, work: Callable, items: list, workers: int, made: dict) -> Iterator:
    """(position, result) in order from one pool, then (position, ``_BROKEN``) if a process died; the
    results finished by then are put in ``made`` (position -> result)."""
    # spawn, not fork: the parent's torch thread pool does not survive a fork
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(items))), mp_context=get_context("spawn"),
                             initializer=_start_worker, initargs=(server.identity(),)) as pool:
        futures = [pool.submit(_on_local_worker, work, item) for item in items]
        try:
            for k, future in enumerate(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    made.update((j, f.result()) for j, f in enumerate(futures)
                                if j > k and f.done() and not f.cancelled() and f.exception() is None)
                    yield k, _BROKEN
                    return
                yield k, result
        finally:
            for future in futures:
                future.cancel()


class _Serialised:
    """A cluster worker's Predictor, shared by its threads: one network call at a time on the device,
    while other threads decode and measure."""

    def __init__(self, predictor):
        self._predictor = predictor
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, *args, **kwargs):
        with self._lock:
            return self._predictor.predict(*args, **kwargs)


_cluster_predictors: dict[PredictorSpec, _Serialised] = {}
_cluster_lock = threading.Lock()


def _on_cluster_worker(item, work: Callable, spec: PredictorSpec):
    with _cluster_lock:  # one model per worker process, built by its first task
        predictor = _cluster_predictors.get(spec)
        if predictor is None:
            predictor = _cluster_predictors[spec] = _Serialised(spec.build())
    return work(item, predictor)


def run_cluster(work: Callable, items: Iterable, spec: PredictorSpec, address: str) -> Iterator:
    """The same on a Dask distributed scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``);
    results in input order. Raises ImportError with the install line when Dask is missing."""
    try:
        from distributed import Client as DaskClient
    except ImportError as exc:
        raise ImportError('running on a cluster needs Dask distributed: pip install "octviewer[cluster]"') from exc
    items = list(items)
    with DaskClient(address, set_as_default=False, timeout="20s") as client:
        futures = client.map(_on_cluster_worker, items, work=work, spec=spec, pure=False)
        try:
            for future in futures:
                yield future.result()
                future.release()
        finally:
            client.cancel([f for f in futures if not f.done()])


class _WorkerRun:
    """What ``octviewer-predict``'s row function asks of its run (``batch.Batch``), on a worker: the same
    naming rule, the notes kept for the parent to print, the results store or None."""

    def __init__(self, args, store):
        from .batch import Batch

        self.args, self.store, self.notes = args, store, []
        self._batch = Batch

    def named_message(self, text: str, path, name: str) -> str:
        return self._batch.named_message(self, text, path, name)

    def note(self, kind: str, text: str) -> None:
        self.notes.append((kind, text))


_worker_store = None  # False: it could not be opened (locked, a link): the parent has said why


def _store_here():
    """This worker process's handle on the machine's results store (SQLite in WAL mode takes several),
    or None: a store that cannot be opened costs the worker its memory of results, never its scans."""
    global _worker_store
    if _worker_store is None:
        from .store import ResultsStore, StoreError

        try:
            _worker_store = ResultsStore()
        except StoreError:
            _worker_store = False
    return _worker_store or None


@dataclasses.dataclass(frozen=True)
class ScreeningJob:
    """``octviewer-predict``'s work on one scan (``(path, name, cam_stem)``), as a worker does it: the
    command's own row function, so a row cannot differ from a single-process run's. Returns
    (row, notes). ``store``: use this machine's results store (local workers; a cluster's workers
    would each fill their own, which nobody reads)."""
    args: object
    synthetic: bool
    store: bool = True

    def __call__(self, item, predictor):
        from .predict_rows import analysed_row as _analysed

        path, name, cam_stem = item
        run = _WorkerRun(self.args, _store_here() if self.store and getattr(self.args, "store", False) else None)
        return _analysed(run, path, name, predictor, self.args, self.synthetic, cam_stem), run.notes

    def lost(self, item):
        """The row of a scan whose process died while reading or analysing it, even when run alone."""
        from ..core.csv_safe import notice

        _path, name, _cam = item
        error = (f"{name}: the process analysing this scan ended unexpectedly (killed, out of memory, or a "
                 "decoder crashed on the file)")
        return {"file": name, "notice": notice(None, self.synthetic), "error": error}, [("skipped", error)]


class ClusterError(RuntimeError):
    """The cluster cannot be used (Dask missing, the scheduler unreachable): the message says which."""


def screen(args, predictor, synthetic: bool, items: list) -> Iterator[tuple[dict, list]]:
    """``octviewer-predict``'s (row, notes) for ``items`` on ``args.workers`` local scan processes or on
    the Dask cluster at ``args.cluster``, in input order."""
    if not items:
        return
    if args.cluster:
        from ..resources import DEMO_MODEL

        spec = PredictorSpec(os.path.abspath(args.model or DEMO_MODEL), args.device, args.precision)
        try:
            yield from run_cluster(ScreeningJob(args, synthetic, store=False), items, spec, args.cluster)
        except (ImportError, OSError, TimeoutError) as exc:
            raise ClusterError(f"the cluster at {args.cluster} cannot be used: {exc}") from exc
        return
    yield from run_local(ScreeningJob(args, synthetic), items, predictor, args.workers)


__all__ = ["ClusterError", "ModelServer", "PredictorSpec", "RemotePredictor", "ScreeningJob", "run_cluster",
           "run_local", "screen"]
