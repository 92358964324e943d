"""knockoff: score marketplace listings for counterfeits with a knockoff model directory.

``Model(path).score(data)`` takes a pyarrow ``Table`` or ``RecordBatch`` or a pandas
``DataFrame`` in the listing schema (columns by name, as in a CSV file: ``id, title,
description, price, currency, brand, category``; ``title`` required, others optional, extra
columns ignored) and returns a pyarrow ``Table`` with the columns of ``knockoff-score``'s scores
file (``SCORES_SCHEMA``), one row per input row, in order. A row that cannot be scored keeps
its place with the reason in ``error``; it never raises for the batch.

``Scorer(model=path)`` does the same as a callable class for Ray Data's ``map_batches`` and
Spark's ``mapInArrow``: it gives back the kind of batch it was given.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Union

import pyarrow as pa

from . import _knockoff

__all__ = ["Model", "Scorer", "SCORES_SCHEMA", "SPARK_SCHEMA"]

#: The scores' schema: ``id, probability, decision, brand, brand_found_in, brand_how,
#: brand_relation, error`` (``probability`` float32, the others strings).
SCORES_SCHEMA: pa.Schema = _knockoff.scores_schema()

_SPARK_TYPES = {pa.string(): "string", pa.float32(): "float"}

#: ``SCORES_SCHEMA`` as a Spark DDL string, for ``DataFrame.mapInArrow(..., SPARK_SCHEMA)``.
SPARK_SCHEMA: str = ", ".join(f"{f.name} {_SPARK_TYPES[f.type]}" for f in SCORES_SCHEMA)

PathLike = Union[str, "os.PathLike[str]"]


def _is_pandas(data: Any) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(data, pandas.DataFrame)


def _from_pandas(frame: Any) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A column of mixed Python objects (say a price column holding "12" and 3.5) has no
        # Arrow type: read each such column as text, as a CSV cell, so that each bad value
        # becomes that row's error instead of failing the batch.
        pandas = sys.modules["pandas"]
        frame = frame.copy()
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = [None if pandas.isna(v) else str(v) for v in frame[name]]
        return pa.Table.from_pandas(frame, preserve_index=False)


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if _is_pandas(data):
        return _from_pandas(data)
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, dict):
        return pa.table(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise TypeError(
        "knockoff scores a pyarrow Table or RecordBatch, a pandas DataFrame or a dict of "
        f"columns; got {type(data).__module__}.{type(data).__qualname__}"
    )


class Model:
    """A knockoff model directory (``config.json``, ``model.safetensors``, ...), loaded and
    checked as ``knockoff-score --model`` loads it.

    Options, as ``knockoff-score``'s flags of the same names: ``store`` (a knockoff store whose
    brand registry scoring uses; default none), ``expected_prevalence``,
    ``review_threshold``, ``block_threshold``; ``threads``: this model's own worker threads
    (default: all cores, shared with other models in the process).
    """

    def __init__(
        self,
        path: PathLike,
        *,
        store: Optional[PathLike] = None,
        expected_prevalence: Optional[float] = None,
        review_threshold: Optional[float] = None,
        block_threshold: Optional[float] = None,
        threads: Optional[int] = None,
    ) -> None:
        self._path = os.fspath(path)
        self._options: Dict[str, Any] = {
            "store": None if store is None else os.fspath(store),
            "expected_prevalence": expected_prevalence,
            "review_threshold": review_threshold,
            "block_threshold": block_threshold,
            "threads": threads,
        }
        self._inner = _knockoff.Model(self._path, **self._options)

    @property
    def path(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def version(self) -> str:
        return self._inner.version

    def score(self, data: Any) -> pa.Table:
        """Scores every row of ``data``; the GIL is released while scoring, on all cores."""
        return pa.Table.from_batches([self.score_batch(data)], schema=SCORES_SCHEMA)

    def score_batch(self, data: Any) -> pa.RecordBatch:
        """Like :meth:`score`, as one ``RecordBatch``."""
        return self._inner.score_arrow(_as_table(data))

    def __reduce__(self) -> Any:
        # Pickled as its path and options (Spark ships closures to executors this way): the
        # copy loads the model again where it is unpickled.
        return (_load_model, (self._path, self._options))

    def __repr__(self) -> str:
        return f"knockoff.Model({self._path!r}, name={self.name!r}, version={self.version!r})"


def _load_model(path: str, options: Dict[str, Any]) -> Model:
    return Model(path, **options)


class Scorer:
    """A callable for batch engines: ``Scorer(model=path, **options)(batch)`` scores a batch and
    gives back the same kind: a ``RecordBatch`` for a ``RecordBatch`` (Spark's
    ``mapInArrow``), a pandas ``DataFrame`` for a ``DataFrame``, a ``Table`` otherwise (Ray
    Data's ``map_batches(..., batch_format="pyarrow")``). ``model`` may also be a loaded
    :class:`Model`; ``options`` are :class:`Model`'s.
    """

    def __init__(self, model: Union[PathLike, Model], **options: Any) -> None:
        if isinstance(model, Model):
            if options:
                raise TypeError("options are given when the model is loaded, not to Scorer")
            self.model = model
        else:
            self.model = Model(model, **options)

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, pa.RecordBatch):
            return self.model.score_batch(batch)
        if _is_pandas(batch):
            return self.model.score(batch).to_pandas()
        return self.model.score(batch)

    def __reduce__(self) -> Any:
        return (Scorer, (self.model,))

    def __repr__(self) -> str:
        return f"knockoff.Scorer({self.model!r})"
