"""A real local Ray Data pipeline: Parquet shards → map_batches(knockoff.Scorer) → the same
scores as knockoff-score on the same rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import knockoff
from conftest import MODEL, assert_same_scores

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_data_over_parquet_shards(local_ray, listings, reference, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    step = 70
    for n, start in enumerate(range(0, listings.num_rows, step)):
        pq.write_table(listings.slice(start, step), shards / f"part-{n:03}.parquet")
    assert len(list(shards.iterdir())) == 5

    scored = (
        ray.data.read_parquet(str(shards))
        .map_batches(
            knockoff.Scorer,
            fn_constructor_kwargs={"model": str(MODEL)},
            batch_format="pyarrow",
            batch_size=32,
            concurrency=1,
        )
        .to_arrow_refs()
    )
    got = pa.concat_tables(ray.get(scored))
    # Ray may reorder blocks: compare by id.
    order = {id_: i for i, id_ in enumerate(reference.column("id").to_pylist())}
    got = got.take(sorted(range(got.num_rows), key=lambda i: order[got.column("id")[i].as_py()]))
    assert_same_scores(got, reference)
