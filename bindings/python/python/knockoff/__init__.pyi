"""Type stubs of the knockoff package (see ``__init__.py`` for the documentation)."""

import os
from typing import Any, Mapping, Optional, Sequence, Union, overload

import pyarrow as pa

# pandas is optional: a DataFrame is typed as Any here.
_DataFrame = Any

PathLike = Union[str, os.PathLike[str]]

#: Anything :meth:`Model.score` reads: a pyarrow Table, RecordBatch or RecordBatchReader, a
#: pandas DataFrame, a dict of columns, or an object with ``__arrow_c_stream__``.
Listings = Union[pa.Table, pa.RecordBatch, pa.RecordBatchReader, _DataFrame, Mapping[str, Sequence[Any]]]

SCORES_SCHEMA: pa.Schema
SPARK_SCHEMA: str

class Model:
    def __init__(
        self,
        path: PathLike,
        *,
        store: Optional[PathLike] = ...,
        expected_prevalence: Optional[float] = ...,
        review_threshold: Optional[float] = ...,
        block_threshold: Optional[float] = ...,
        threads: Optional[int] = ...,
    ) -> None: ...
    @property
    def path(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    def score(self, data: Listings) -> pa.Table: ...
    def score_batch(self, data: Listings) -> pa.RecordBatch: ...

class Scorer:
    model: Model
    # ``options``: the keyword arguments of :class:`Model`.
    def __init__(self, model: Union[PathLike, Model], **options: Any) -> None: ...
    @overload
    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch: ...
    @overload
    def __call__(self, batch: pa.Table) -> pa.Table: ...
    @overload
    def __call__(self, batch: Any) -> Any: ...
