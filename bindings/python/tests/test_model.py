"""knockoff.Model and knockoff.Scorer against knockoff-score on the same rows."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pacsv
import pytest

import knockoff
from conftest import LISTINGS, MODEL, assert_same_scores, run_knockoff_score


def test_scores_equal_knockoff_score(model, listings, reference):
    scores = model.score(listings)
    assert scores.schema == knockoff.SCORES_SCHEMA
    assert_same_scores(scores, reference)
    assert scores.column("error").null_count == scores.num_rows
    # The fixture has all three decisions, so equality above means something.
    assert set(scores.column("decision").to_pylist()) == {"allow", "review", "block"}


def test_text_typed_columns_score_the_same(model, reference):
    names = pacsv.read_csv(LISTINGS).column_names
    as_text = pacsv.read_csv(
        LISTINGS,
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    assert_same_scores(model.score(as_text), reference)


def test_pandas_input(model, reference):
    frame = pd.read_csv(LISTINGS, keep_default_na=False)
    assert_same_scores(model.score(frame), reference)


def test_record_batch_input_and_many_small_batches(model, listings, reference):
    batches = listings.to_batches(max_chunksize=7)
    assert len(batches) > 1
    assert_same_scores(model.score(pa.Table.from_batches(batches)), reference)
    first = model.score(batches[0])
    assert_same_scores(first, reference.slice(0, batches[0].num_rows))


BAD_ROWS = [
    {"id": "neg", "title": "Rolex Submariner", "price": "-5", "currency": "USD"},
    {"id": "cur", "title": "Rolex Submariner", "price": "120", "currency": "XXX"},
    {"id": "empty", "title": "  ", "price": "120", "currency": "USD"},
    {"id": "notnum", "title": "Rolex Submariner", "price": "cheap", "currency": "USD"},
    {"id": "ok", "title": "Rolex Submariner Date 1:1", "price": "120", "currency": "USD"},
    {"id": "nocur", "title": "Rolex Submariner", "price": "120", "currency": ""},
]


def test_bad_rows_get_an_error_not_an_exception(model, tmp_path):
    table = pa.Table.from_pylist(BAD_ROWS)
    scores = model.score(table)
    assert scores.column("id").to_pylist() == [r["id"] for r in BAD_ROWS]
    errors = dict(zip(scores.column("id").to_pylist(), scores.column("error").to_pylist()))
    assert errors["neg"].startswith("field `price`")
    assert errors["cur"].startswith("field `currency`") and "XXX" in errors["cur"]
    assert errors["empty"].startswith("field `title`")
    assert errors["notnum"] == "field `price`: `cheap` is not a number"
    assert errors["nocur"].startswith("field `currency`")
    assert errors["ok"] is None
    ok = scores.filter(pa.compute.equal(scores.column("id"), "ok"))
    assert ok.column("probability")[0].as_py() is not None
    failed = scores.filter(pa.compute.is_valid(scores.column("error")))
    assert failed.column("probability").null_count == failed.num_rows == 5
    assert failed.column("decision").null_count == 5

    # knockoff-score gives the same rows the same reasons (after its file:line prefix).
    csv = tmp_path / "bad.csv"
    pacsv.write_csv(table, csv)
    reference = run_knockoff_score(csv, tmp_path)
    for ours, theirs in zip(scores.column("error").to_pylist(), reference.column("error").to_pylist()):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert theirs.endswith(": " + ours), (ours, theirs)
    assert_same_scores(scores, reference)


def test_pandas_mixed_object_column_is_read_as_text(model):
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "title": ["Rolex Submariner", "Gucci belt"],
            "price": [120.0, "cheap"],
            "currency": ["USD", "USD"],
        }
    )
    scores = model.score(frame)
    assert scores.column("error").to_pylist() == [None, "field `price`: `cheap` is not a number"]


def test_missing_title_column_is_refused(model):
    with pytest.raises(ValueError, match="title"):
        model.score(pa.table({"id": ["a"], "name": ["x"]}))
    with pytest.raises(ValueError, match="title"):
        model.score(pa.table({"id": pa.array([], pa.string())}))


def test_a_column_of_the_wrong_kind_is_refused_naming_it(model):
    with pytest.raises(TypeError, match="column `brand`"):
        model.score(pa.table({"title": ["a"], "brand": [[1, 2]]}))


def test_unsupported_input_type_is_refused(model):
    with pytest.raises(TypeError, match="pyarrow Table"):
        model.score([{"title": "a"}])


def test_empty_input_gives_an_empty_table(model, listings):
    scores = model.score(listings.slice(0, 0))
    assert scores.num_rows == 0 and scores.schema == knockoff.SCORES_SCHEMA


def test_a_missing_model_is_refused_with_its_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        knockoff.Model(tmp_path / "nowhere")


def test_options_are_checked_and_used(listings, reference):
    with pytest.raises(ValueError, match="review-threshold"):
        knockoff.Model(MODEL, review_threshold=2.0)
    lenient = knockoff.Model(MODEL, block_threshold=1.0, threads=1)
    decisions = set(lenient.score(listings).column("decision").to_pylist())
    assert "block" in reference.column("decision").to_pylist()
    assert "block" not in decisions
    one_thread = knockoff.Model(MODEL, threads=1)
    assert_same_scores(one_thread.score(listings), reference)


def test_scorer_gives_back_the_kind_it_is_given(listings, reference):
    scorer = knockoff.Scorer(model=str(MODEL))
    batch = listings.to_batches()[0]
    out = scorer(batch)
    assert isinstance(out, pa.RecordBatch) and out.schema == knockoff.SCORES_SCHEMA
    assert isinstance(scorer(listings), pa.Table)
    frame = scorer(listings.to_pandas())
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == knockoff.SCORES_SCHEMA.names


def test_spark_style_map_in_arrow_with_a_pickled_scorer(listings, reference):
    """What Spark's ``mapInArrow(lambda it: map(scorer, it), SPARK_SCHEMA)`` does on an
    executor: unpickle the closure's scorer and map it over the partition's batches."""
    scorer = pickle.loads(pickle.dumps(knockoff.Scorer(model=MODEL)))
    batches = list(map(scorer, listings.to_batches(max_chunksize=64)))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert_same_scores(pa.Table.from_batches(batches), reference)


def test_spark_schema_names_every_column():
    assert knockoff.SPARK_SCHEMA == (
        "id string, probability float, decision string, brand string, "
        "brand_found_in string, brand_how string, brand_relation string, error string"
    )


def test_scoring_releases_the_gil(model, listings):
    big = pa.concat_tables([listings] * 40)
    window = {}

    def score():
        window["start"] = time.perf_counter()
        model.score(big)
        window["end"] = time.perf_counter()

    worker = threading.Thread(target=score)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    inside = [t for t in ticks if window["start"] < t < window["end"]]
    # With the GIL held for the whole Rust call this loop could not run meanwhile.
    assert window["end"] - window["start"] > 0.01
    assert len(inside) > 1000, (len(inside), window)


def test_model_reports_its_identity_and_pickles(model):
    assert model.name and model.version
    copy = pickle.loads(pickle.dumps(model))
    assert (copy.name, copy.version, copy.path) == (model.name, model.version, model.path)


def test_type_stubs_ship_with_the_package():
    package = Path(knockoff.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "__init__.pyi").exists()
