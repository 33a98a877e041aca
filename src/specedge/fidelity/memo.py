"""In-process memos for the fidelity study: each dataset listed, looked up and decoded once per study.

A :class:`~specedge.fidelity.repeats.FidelityStudy` (the report's fidelity section, ``specedge fidelity --rank``)
replays every run twice (observed and recorded acceptance), and each replay asks the store for the catalog many
times (the pair's other runs, the latest alone / job-shaped grid of each model, the recorded acceptance trace)
and reads the same datasets again (each run's records for the host-overhead and contention fits of every other
run of its pair, the compute grids of a session for every run of it). :class:`StoreSnapshot` answers those from
memory: the same answers the store gives, computed once. The two replays of a run also share what does not depend
on acceptance (compare's stage-times recursion, the fits) and the pair's recorded acceptance source
(:func:`trace_source`).

Nothing is written to disk: a cold build computes everything once, a warm one the same. Every memo is keyed by
what its answer depends on (the catalog the store reads, a dataset's id, version and checksum, the arguments),
so a dataset replaced while a snapshot is alive is read again.
"""

from __future__ import annotations

import os
from typing import Any


class StoreSnapshot:
    """A read-only view of a trace store whose :meth:`list`, :meth:`info` and :meth:`read` are memoised.

    The memos are dropped when the store's catalog changes (the store re-parses ``catalog.json`` only then and
    shares the parsed catalog otherwise; a new parsed catalog object means a write happened). :meth:`read` keys
    a frame by (id, version, checksum, columns) and returns a copy, so a caller may change what it gets. Infos
    are shared: their metadata must not be changed (no fidelity code does). Other attributes are the store's.
    """

    def __init__(self, store):
        self._store = store
        self._view: Any = None
        self._list: list | None = None
        self._infos: dict = {}
        self._frames: dict = {}
        path = getattr(store, "catalog_path", None) if hasattr(store, "_catalog_view") else None
        self._catalog_path = None if path is None else os.fspath(path)  # built once: see _stamp
        self._seen: tuple | None = None  # the catalog's stamp at the last check that asked the store

    @property
    def store(self):
        """The wrapped store."""
        return self._store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _stamp(self) -> tuple | None:
        """(inode, size, mtime_ns) of the store's ``catalog.json`` now, or None (no such file, not a file store).

        The same triple :meth:`TraceStore._catalog_view` keys its parsed catalog by (writers replace the file, so a
        write changes it), taken with one ``os.stat`` of a path built once, without the ``resolve`` the store adds."""
        if self._catalog_path is None:
            return None
        try:
            st = os.stat(self._catalog_path)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _fresh(self) -> None:
        """Drop the memos when the store's catalog changed. Checked on every call (a write between two calls is
        always seen): while the catalog file's (inode, size, mtime_ns) is the one of the last check, the store
        would answer with the same parsed catalog, so it is not asked; otherwise it is, and a new parsed catalog
        object means a write happened."""
        stamp = self._stamp()
        if stamp is not None and stamp == self._seen:
            return
        view = getattr(self._store, "_catalog_view", None)
        view = view() if view is not None else self._view
        self._seen = stamp
        if view is not self._view:
            self._view, self._list = view, None
            self._infos.clear()
            self._frames.clear()

    def list(self) -> list:
        """The store's :meth:`list` (a new list of shared infos)."""
        self._fresh()
        if self._list is None:
            self._list = self._store.list()
            self._infos.update({(i.id, None): i for i in self._list})
        return list(self._list)

    def info(self, dataset_id: str, version: int | None = None):
        """The store's :meth:`info` (shared; errors are the store's)."""
        self._fresh()
        key = (dataset_id, None if version is None else int(version))
        if key not in self._infos:
            self._infos[key] = self._store.info(dataset_id, version)
        return self._infos[key]

    def read(self, dataset_id: str, filters=None, columns=None, *, version: int | None = None):
        """The store's :meth:`read`, decoded once per (id, version, checksum, columns); filtered reads are not
        memoised."""
        if filters:
            return self._store.read(dataset_id, filters, columns, version=version)
        info = self.info(dataset_id, version)
        key = (dataset_id, info.version, info.checksum, None if columns is None else tuple(columns))
        if key not in self._frames:
            self._frames[key] = self._store.read(dataset_id, columns=columns, version=version)
        return self._frames[key].copy()

    def __contains__(self, dataset_id: str) -> bool:
        return dataset_id in self._store


def store_key(store) -> str:
    """What identifies a store in a memo key: its root folder (a snapshot answers with its store's), else the
    object's id."""
    return str(getattr(store, "root", id(store)))


def version_key(store, dataset_id: str) -> tuple:
    """(store, dataset id, checksum of its newest version): a memo of anything read from that dataset."""
    return (store_key(store), dataset_id, store.info(dataset_id).checksum)


def snapshot(store):
    """``store`` (a store, or a path to open) as a :class:`StoreSnapshot` (itself when it is one already)."""
    if isinstance(store, StoreSnapshot):
        return store
    if not hasattr(store, "read"):
        from specedge.traces.store import open_store

        store = open_store(store)
    return StoreSnapshot(store)


#: MeasuredCompute predictors built from compute datasets, keyed by (store root, id, checksum, model, arguments)
_MEASURED: dict = {}


def measured_compute(store, dataset_id: str, card, *, allow_extrapolation: bool, source: str):
    """``MeasuredCompute.from_trace(card, compute_rows(store, dataset_id, card.name), ...)``, built once per
    (store root, dataset id, checksum, card, arguments). The predictor is immutable, so it is shared."""
    from specedge.fidelity.predictors import compute_rows
    from specedge.latency.compute import MeasuredCompute

    key = (*version_key(store, dataset_id), card,
           bool(allow_extrapolation), source)
    if key not in _MEASURED:
        if len(_MEASURED) > 64:
            _MEASURED.clear()
        _MEASURED[key] = MeasuredCompute.from_trace(card, compute_rows(store, dataset_id, card.name),
                                                    allow_extrapolation=allow_extrapolation, source=source)
    return _MEASURED[key]


#: other built values (predictor pairs of a compute-trace pair, pass calibrations), keyed by what they depend on
_BUILT: dict = {}


def frame_digest(frame) -> str:
    """A digest of a frame's columns, dtypes, index and values in order (equal frames, equal digests)."""
    import hashlib

    import pandas as pd

    h = hashlib.blake2b(digest_size=20)
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()


#: Entries a memo holds at most; beyond, it is dropped wholesale (then computed again).
MEMO_ENTRIES = 4096


def built(key, build, cache: dict | None = None):
    """``build()``, once per ``key`` (built again when ``key`` is None or unhashable), in ``cache`` (default: the
    built values' memo; a module may keep its own, e.g. contention's per-run samples). The value is shared: only
    values nobody mutates (frozen predictors, calibrations, read-only arrays) go here."""
    cache = _BUILT if cache is None else cache
    try:
        hash(key)
    except TypeError:
        key = None
    if key is None:
        return build()
    if key not in cache:
        if len(cache) > MEMO_ENTRIES:  # a few per run; dropped wholesale beyond (then computed again)
            cache.clear()
        cache[key] = build()
    return cache[key]


def trace_source(store, acceptance):
    """The acceptance source a replay gets for ``acceptance``: a dataset id of ``store`` becomes its source
    (:func:`specedge.scenario._acceptance`, what ``Scenario.from_preset`` builds from an id), built once per dataset
    version (:func:`built`, keyed by :func:`version_key`: a replaced trace is built again; the study replays every
    run of a pair with the pair's one recorded trace) and shared: its arrays are made read-only (a replay only
    reads them). Anything else ("expected", an id not in the store, a source object) is returned as it is, for the
    scenario to take or reject with its own error."""
    import numpy as np

    from specedge.scenario import _acceptance

    if not isinstance(acceptance, str) or acceptance in ("expected", "iid") or acceptance not in store:
        return acceptance

    def build():
        source = _acceptance(acceptance, float("nan"), store)  # alpha is unused for a dataset
        for value in vars(source).values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
        return source

    return built(("acceptance_source", *version_key(store, acceptance)), build)


def clear() -> None:
    """Drop every fidelity memo of this process (compare's run records, contention's pass samples, the measured
    grids, the built values): the next study computes everything again, as a fresh process would."""
    from specedge.fidelity import compare, contention

    for cache in (compare._RECORDS_CACHE, contention._PASSES_CACHE, contention._SAMPLES_CACHE, _MEASURED, _BUILT):
        cache.clear()
