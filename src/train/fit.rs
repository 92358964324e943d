//! Fitting the network: the epoch loop over augmented examples, sparse Adagrad on the hashed
//! embedding table, candle AdamW on the MLP, token dropout, and early stopping on validation
//! ROC-AUC that keeps the best epoch's weights.

use crate::eval::ranking;
use crate::features::Features;
use crate::model::network::{DenseScaler, Mlp, Network, TrainableMlp};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use indicatif::ProgressBar;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Instant;

use super::featurize::Examples;
use super::metrics::EpochReport;
use super::options::TrainOptions;
use super::TrainError;

/// Numerically stable mean binary cross-entropy on logits:
/// `max(x, 0) - x·y + log(1 + e^{-|x|})`, never a log of a sigmoid.
pub fn stable_bce(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((logits.relu()? - (logits * targets)?)? + softplus)?.mean_all()
}

/// Row-wise Adagrad for the embedding table (one accumulator per row, as in large
/// recommendation models): only rows a batch touches are updated, and one square root per
/// row instead of one per weight keeps the update cheap.
struct SparseAdagrad {
    accumulator: Vec<f32>,
    learning_rate: f32,
}

impl SparseAdagrad {
    fn new(rows: usize, learning_rate: f32) -> Self {
        SparseAdagrad {
            accumulator: vec![0.0; rows],
            learning_rate,
        }
    }

    fn update(&mut self, table: &mut Array2<f32>, id: u32, gradient: &[f32], mean_square: f32) {
        let (Some(row), Some(acc)) = (
            table.row_mut(id as usize).into_slice(),
            self.accumulator.get_mut(id as usize),
        ) else {
            return;
        };
        *acc += mean_square;
        let step = self.learning_rate / (acc.sqrt() + 1e-6);
        for (w, g) in row.iter_mut().zip(gradient) {
            *w -= step * g;
        }
    }
}

/// The best epoch seen so far: its validation ROC-AUC and weights.
struct BestEpoch {
    auc: f64,
    epoch: usize,
    table: Array2<f32>,
    mlp: Mlp,
}

/// A fitted network (the best epoch's weights, the table rounded to f16 as it ships) and
/// how fitting went.
pub(super) struct Fitted {
    pub network: Network,
    pub epochs: Vec<EpochReport>,
    pub best_epoch: usize,
}

/// The optimisers and reused buffers of one fitting run.
struct Fitter<'a> {
    options: &'a TrainOptions,
    device: Device,
    trainable: TrainableMlp,
    adagrad: SparseAdagrad,
    adam: AdamW,
    /// One batch's network inputs, and its examples after token dropout.
    inputs: Vec<f32>,
    kept: Vec<Features>,
}

/// Fits a network on `examples`, validating on `valid` after every epoch; `rng` (already
/// used for augmentation) shuffles and drops tokens.
pub(super) fn fit_network(
    options: &TrainOptions,
    examples: &Examples,
    valid: &[Features],
    valid_labels: &[bool],
    rng: &mut StdRng,
    progress: &ProgressBar,
) -> Result<Fitted, TrainError> {
    let (mut fitter, mut network) = Fitter::new(options, examples)?;
    let mut order: Vec<usize> = (0..examples.features.len()).collect();
    let mut epochs = Vec::new();
    let mut best: Option<BestEpoch> = None;
    let mut since_best = 0;
    for epoch in 1..=options.max_epochs {
        let epoch_started = Instant::now();
        order.shuffle(rng);
        progress.reset();
        progress.set_length(order.len() as u64);
        progress.set_prefix(format!("epoch {epoch}/{}", options.max_epochs));
        let train_loss = fitter.epoch(&mut network, examples, &order, rng, progress)?;
        let auc = ranking::roc_auc(&logits_of(&network, valid)?, valid_labels);
        let report = EpochReport {
            epoch,
            train_loss,
            valid_roc_auc: auc,
            rows_per_second: order.len() as f64 / epoch_started.elapsed().as_secs_f64(),
        };
        report.log(progress);
        epochs.push(report);
        if best
            .as_ref()
            .is_none_or(|b| auc > b.auc + options.min_improvement)
        {
            best = Some(BestEpoch {
                auc,
                epoch,
                table: network.table.clone(),
                mlp: fitter.trainable.snapshot()?,
            });
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= options.patience {
                tracing::info!(
                    epoch,
                    "early stopping: validation ROC-AUC stopped improving"
                );
                break;
            }
        }
    }
    progress.finish_and_clear();
    let Some(best) = best else {
        return Err(TrainError::Data("no epoch ran (max_epochs is 0)".into()));
    };
    network.table = best.table;
    network.mlp = best.mlp;
    // The artifact stores the table in f16: calibrate and pick thresholds on the weights
    // that ship, so a reloaded model reproduces the measured figures exactly.
    network
        .table
        .mapv_inplace(|w| half::f16::from_f32(w).to_f32());
    Ok(Fitted {
        network,
        epochs,
        best_epoch: best.epoch,
    })
}

impl EpochReport {
    /// Prints the epoch's figures above the progress bar and logs them.
    fn log(&self, progress: &ProgressBar) {
        progress.println(format!(
            "epoch {}: loss {:.4}, validation ROC-AUC {:.4}, {:.0} rows/s",
            self.epoch, self.train_loss, self.valid_roc_auc, self.rows_per_second
        ));
        tracing::info!(
            epoch = self.epoch,
            loss = self.train_loss,
            valid_roc_auc = self.valid_roc_auc,
            rows_per_second = self.rows_per_second,
            "epoch finished"
        );
    }
}

impl<'a> Fitter<'a> {
    /// A fresh network (seeded table and MLP, the dense scaler fitted on `examples`) and
    /// the optimisers that fit it.
    fn new(
        options: &'a TrainOptions,
        examples: &Examples,
    ) -> Result<(Fitter<'a>, Network), TrainError> {
        let device = Device::Cpu;
        let config = options.network;
        let trainable = TrainableMlp::new(&config, options.seed, &device)?;
        let network = Network {
            config,
            table: init_table(
                options.features.buckets as usize,
                config.embedding_dim,
                options.seed,
            ),
            scaler: DenseScaler::fit(&examples.features),
            mlp: trainable.mlp.clone(),
        };
        let adam = AdamW::new(
            trainable.vars.clone(),
            ParamsAdamW {
                lr: options.mlp_learning_rate,
                weight_decay: options.mlp_weight_decay,
                ..Default::default()
            },
        )?;
        let fitter = Fitter {
            options,
            adagrad: SparseAdagrad::new(network.table.nrows(), options.embedding_learning_rate),
            adam,
            inputs: vec![0f32; options.batch_size * config.input_dim()],
            kept: (0..options.batch_size)
                .map(|_| Features::default())
                .collect(),
            device,
            trainable,
        };
        Ok((fitter, network))
    }
}

impl Fitter<'_> {
    /// One pass over `order`; returns the mean training loss.
    fn epoch(
        &mut self,
        network: &mut Network,
        examples: &Examples,
        order: &[usize],
        rng: &mut StdRng,
        progress: &ProgressBar,
    ) -> Result<f64, TrainError> {
        let batch_size = self.options.batch_size;
        let mut loss_sum = 0f64;
        let mut batches = 0usize;
        for batch in order.chunks(batch_size) {
            loss_sum += self.step(network, examples, batch, rng)?;
            batches += 1;
            if batches.is_multiple_of(64) {
                progress.inc((64 * batch_size) as u64);
                progress.set_message(format!("loss {:.4}", loss_sum / batches as f64));
            }
        }
        Ok(loss_sum / batches.max(1) as f64)
    }

    /// One batch: inputs after token dropout, the MLP's AdamW step, then each example's
    /// input gradient spread over the embedding rows it averaged. Returns the batch loss.
    fn step(
        &mut self,
        network: &mut Network,
        examples: &Examples,
        batch: &[usize],
        rng: &mut StdRng,
    ) -> Result<f64, TrainError> {
        let width = network.config.input_dim();
        let dim = network.config.embedding_dim;
        let b = batch.len();
        for (slot, &index) in batch.iter().enumerate() {
            let source = &examples.features[index];
            let target = &mut self.kept[slot];
            target.ids.clear();
            target.ids.extend(
                source
                    .ids
                    .iter()
                    .copied()
                    .filter(|_| rng.random::<f32>() >= self.options.token_dropout),
            );
            if target.ids.is_empty() {
                target.ids.extend_from_slice(&source.ids);
            }
            target.dense = source.dense;
            Network::input_row(
                &network.table,
                &network.scaler,
                target,
                &mut self.inputs[slot * width..(slot + 1) * width],
            );
        }
        let x = Var::from_slice(&self.inputs[..b * width], (b, width), &self.device)?;
        let y: Vec<f32> = batch.iter().map(|&i| examples.labels[i]).collect();
        let y = Tensor::from_vec(y, b, &self.device)?;
        let logits = network.mlp.forward(x.as_tensor())?.flatten_all()?;
        let loss = stable_bce(&logits, &y)?;
        let grads = loss.backward()?;
        self.adam.step(&grads)?;
        let grad_x = grads
            .get(x.as_tensor())
            .ok_or_else(|| TrainError::Data("no gradient reached the embedding input".into()))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut row_gradient = vec![0f32; dim];
        for slot in 0..b {
            let ids = &self.kept[slot].ids;
            let scale = 1.0 / ids.len().max(1) as f32;
            for (g, source) in row_gradient
                .iter_mut()
                .zip(&grad_x[slot * width..slot * width + dim])
            {
                *g = source * scale;
            }
            let mean_square = row_gradient.iter().map(|g| g * g).sum::<f32>() / dim as f32;
            for &id in ids {
                self.adagrad
                    .update(&mut network.table, id, &row_gradient, mean_square);
            }
        }
        Ok(f64::from(loss.to_scalar::<f32>()?))
    }
}

/// Small random rows (fastText-style uniform ±1/dim), seeded.
fn init_table(buckets: usize, dim: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7ab1e);
    let bound = 1.0 / dim as f32;
    Array2::from_shape_simple_fn((buckets, dim), || rng.random_range(-bound..bound))
}

pub(super) fn logits_of(network: &Network, features: &[Features]) -> Result<Vec<f32>, TrainError> {
    let mut out = Vec::with_capacity(features.len());
    for chunk in features.chunks(4096) {
        let refs: Vec<&Features> = chunk.iter().collect();
        out.extend(network.logits(&refs)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_bce_matches_the_textbook_formula_and_survives_extremes() {
        let device = Device::Cpu;
        let logits = Tensor::new(&[0.0f32, 2.0, -3.0], &device).unwrap();
        let targets = Tensor::new(&[1.0f32, 0.0, 0.0], &device).unwrap();
        let got = stable_bce(&logits, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        let expected = (-(sig(0.0)).ln() - (1.0 - sig(2.0)).ln() - (1.0 - sig(-3.0)).ln()) / 3.0;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        let extreme = Tensor::new(&[200.0f32, -200.0], &device).unwrap();
        let wrong = Tensor::new(&[0.0f32, 1.0], &device).unwrap();
        let loss = stable_bce(&extreme, &wrong)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(loss.is_finite() && (loss - 200.0).abs() < 1e-3, "{loss}");
    }

    #[test]
    fn sparse_adagrad_touches_only_the_given_row() {
        let mut table = Array2::ones((4, 2));
        let mut opt = SparseAdagrad::new(4, 0.5);
        opt.update(&mut table, 2, &[1.0, -1.0], 1.0);
        assert!(table[[2, 0]] < 1.0 && table[[2, 1]] > 1.0);
        assert_eq!(table.row(0).to_vec(), vec![1.0, 1.0]);
        assert_eq!(table.row(3).to_vec(), vec![1.0, 1.0]);
        // Steps shrink as the row's squared gradients accumulate.
        let first = 1.0 - table[[2, 0]];
        opt.update(&mut table, 2, &[1.0, -1.0], 1.0);
        let second = 1.0 - first - table[[2, 0]];
        assert!(second < first, "{second} vs {first}");
    }
}
