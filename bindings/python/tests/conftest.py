"""Shared fixtures: the shipped model, the 300-listing fixture, and knockoff-score's own
scores of it (the reference every test compares with)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "default"
LISTINGS = ROOT / "tests" / "fixtures" / "tiny-listings.csv"


def knockoff_score_binary() -> Path:
    """``$KNOCKOFF_SCORE_BIN``, else the workspace's debug build (built here if missing)."""
    given = os.environ.get("KNOCKOFF_SCORE_BIN")
    if given:
        return Path(given)
    binary = ROOT / "target" / "debug" / "knockoff-score"
    if not binary.exists():
        cargo = shutil.which("cargo") or "cargo"
        subprocess.run([cargo, "build", "--bin", "knockoff-score"], cwd=ROOT, check=True)
    return binary


def run_knockoff_score(csv: Path, workdir: Path) -> pa.Table:
    """Scores ``csv`` with the knockoff-score binary (empty brand registry) and reads its
    scores file with every column as text."""
    out = workdir / "scores.csv"
    subprocess.run(
        [
            str(knockoff_score_binary()),
            "--model", str(MODEL),
            "--input", str(csv),
            "--output", str(out),
            "--store", str(workdir / "knockoff.db"),
        ],
        check=True,
        capture_output=True,
    )
    names = pacsv.read_csv(out).column_names
    return pacsv.read_csv(
        out,
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=True,
        ),
    )


@pytest.fixture(scope="session")
def model():
    import knockoff

    return knockoff.Model(MODEL)


@pytest.fixture(scope="session")
def listings() -> pa.Table:
    """The fixture as a data team would load it: pyarrow infers the types (price float64)."""
    return pacsv.read_csv(LISTINGS)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> pa.Table:
    return run_knockoff_score(LISTINGS, tmp_path_factory.mktemp("reference"))


def assert_same_scores(got: pa.Table, want: pa.Table) -> None:
    """Same ids, decisions, brand columns and errors, in order; probabilities within 1e-6
    (knockoff-score writes six decimals)."""
    assert got.num_rows == want.num_rows
    for column in ["id", "decision", "brand", "brand_found_in", "brand_how", "brand_relation"]:
        assert got.column(column).to_pylist() == want.column(column).to_pylist(), column
    for i, (p, q) in enumerate(
        zip(got.column("probability").to_pylist(), want.column("probability").to_pylist())
    ):
        if q is None:
            assert p is None, f"row {i}"
        else:
            assert p is not None and abs(p - float(q)) <= 1e-6, f"row {i}: {p} vs {q}"
