//! The `knockoff._knockoff` Python extension: a knockoff model that scores Arrow data with the
//! GIL released. The Python package (`python/knockoff/__init__.py`) turns pandas and pyarrow
//! inputs into a pyarrow Table and wraps this class.

pub mod convert;
pub mod scoring;

use arrow::array::RecordBatch;
use arrow::pyarrow::{PyArrowType, Table};
use knockoff::serve::overrides::ThresholdOverrides;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use scoring::{BindingError, LoadOptions, Scoring};
use std::path::PathBuf;

fn to_py(error: BindingError) -> PyErr {
    use convert::{ColumnsError, ConvertError};
    let message = error.to_string();
    match error {
        BindingError::Convert(ConvertError::Columns(ColumnsError::Column { .. })) => {
            PyTypeError::new_err(message)
        }
        BindingError::Convert(ConvertError::Output(_))
        | BindingError::Model(_)
        | BindingError::Threads(_) => PyRuntimeError::new_err(message),
        BindingError::Convert(ConvertError::Columns(ColumnsError::MissingTitle { .. }))
        | BindingError::Load { .. }
        | BindingError::Store(_)
        | BindingError::Threshold(_) => PyValueError::new_err(message),
    }
}

/// A loaded model directory.
#[pyclass(frozen, name = "Model", module = "knockoff._knockoff")]
struct PyModel {
    scoring: Scoring,
}

#[pymethods]
impl PyModel {
    #[new]
    #[pyo3(signature = (path, *, store=None, expected_prevalence=None, review_threshold=None, block_threshold=None, threads=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        store: Option<PathBuf>,
        expected_prevalence: Option<f64>,
        review_threshold: Option<f32>,
        block_threshold: Option<f32>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let options = LoadOptions {
            store,
            overrides: ThresholdOverrides {
                review: review_threshold,
                block: block_threshold,
                expected_prevalence,
            },
            threads,
        };
        // Loading reads and checks the weights: no reason to hold other Python threads up.
        let scoring = py
            .detach(|| Scoring::load(&path, &options))
            .map_err(to_py)?;
        Ok(PyModel { scoring })
    }

    #[getter]
    fn name(&self) -> &str {
        self.scoring.model().name()
    }

    #[getter]
    fn version(&self) -> &str {
        self.scoring.model().version()
    }

    /// Scores every row of `data` (anything with `__arrow_c_stream__`, e.g. a pyarrow Table)
    /// into one RecordBatch of the scores schema, with the GIL released while scoring.
    fn score_arrow(
        &self,
        py: Python<'_>,
        data: PyArrowType<Table>,
    ) -> PyResult<PyArrowType<RecordBatch>> {
        let (batches, schema) = data.0.into_inner();
        py.detach(|| self.scoring.score(&schema, &batches))
            .map(PyArrowType)
            .map_err(to_py)
    }
}

/// The scores' pyarrow schema: the columns of `knockoff-score`'s scores file, typed.
#[pyfunction]
fn scores_schema() -> PyArrowType<arrow::datatypes::Schema> {
    PyArrowType(convert::scores_schema().as_ref().clone())
}

#[pymodule]
fn _knockoff(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // As the binaries do: tells candle the thread count so it does not read /proc/cpuinfo
    // on every matrix product (kept when the process already set RAYON_NUM_THREADS).
    knockoff::threads::set_worker_threads(None);
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(scores_schema, m)?)?;
    Ok(())
}
