//! A loaded model with its options, scoring Arrow batches through knockoff's batch core
//! (`knockoff::batch::score_chunk`: the same validation, features and decisions as
//! `knockoff-score`) on a rayon pool.

use crate::convert::{title_column, ConvertError, ListingColumns, ScoresBuilder};
use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use knockoff::batch::score_chunk;
use knockoff::model::{ArtifactError, Model, ModelError};
use knockoff::serve::overrides::{ThresholdError, ThresholdOverrides};
use knockoff::store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// Rows validated and scored together: enough to keep every core busy, few enough that the
/// raw rows of one chunk stay small beside the Arrow data they come from.
const CHUNK_ROWS: usize = 8192;

/// What scoring names the input in row errors (they are shown without it).
const SOURCE: &str = "input";

/// Why a model could not be loaded or a batch not scored as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BindingError {
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error("loading model {path}: {source}")]
    Load {
        path: PathBuf,
        source: ArtifactError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    #[error("threads: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// How to load a model: the same options as `knockoff-score`'s flags of the same names.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A knockoff store whose brand registry scoring uses; none: the model's brands only.
    pub store: Option<PathBuf>,
    pub overrides: ThresholdOverrides,
    /// Threads of this model's own pool; none: the process-wide pool (all cores).
    pub threads: Option<usize>,
}

/// A model ready to score batches.
pub struct Scoring {
    model: Model,
    pool: Option<rayon::ThreadPool>,
}

impl Scoring {
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Scoring, BindingError> {
        let model = Model::load(path).map_err(|source| BindingError::Load {
            path: path.to_path_buf(),
            source,
        })?;
        let model = options.overrides.apply_to(model)?;
        if let Some(store) = &options.store {
            let brands = Store::open(store)?.brands()?;
            model.use_registry(&brands);
        }
        let pool = match options.threads {
            Some(threads) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.max(1))
                    .build()?,
            ),
            None => None,
        };
        Ok(Scoring { model, pool })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Scores every row of `batches` (all of `schema`), in order: one output row per input
    /// row, with `error` set on rows that could not be scored.
    pub fn score(
        &self,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<RecordBatch, BindingError> {
        match &self.pool {
            Some(pool) => pool.install(|| self.score_here(schema, batches)),
            None => self.score_here(schema, batches),
        }
    }

    fn score_here(
        &self,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<RecordBatch, BindingError> {
        // Refused even when there are no rows: a schema error should not depend on the data.
        title_column(schema).map_err(ConvertError::from)?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut out = ScoresBuilder::with_capacity(rows);
        let mut line = 0u64;
        for batch in batches {
            let columns = ListingColumns::find(batch).map_err(ConvertError::from)?;
            let mut start = 0;
            while start < batch.num_rows() {
                let end = (start + CHUNK_ROWS).min(batch.num_rows());
                let chunk = (start..end)
                    .map(|row| {
                        line += 1;
                        Ok(columns.row(row, line))
                    })
                    .collect();
                for row in score_chunk(&self.model, SOURCE, chunk)? {
                    out.push(&row);
                }
                start = end;
            }
        }
        Ok(out.finish()?)
    }
}
