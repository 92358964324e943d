//! The network: a hashed-n-gram embedding bag (kept in `ndarray`, updated sparsely by the
//! trainer) concatenated with standardised price features, into a small candle MLP.

use crate::features::{Features, DENSE_LEN};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::Linear;
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Sizes of the network, stored in the model's config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub embedding_dim: usize,
    pub hidden: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            embedding_dim: 32,
            hidden: 64,
        }
    }
}

impl NetworkConfig {
    pub fn input_dim(&self) -> usize {
        self.embedding_dim + DENSE_LEN
    }
}

/// Per-feature shift and scale so price features reach the MLP with unit variance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseScaler {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl DenseScaler {
    pub fn fit(rows: &[Features]) -> DenseScaler {
        let n = rows.len().max(1) as f64;
        let mut mean = [0f64; DENSE_LEN];
        let mut sq = [0f64; DENSE_LEN];
        for row in rows {
            for (k, v) in row.dense.iter().enumerate() {
                mean[k] += f64::from(*v);
                sq[k] += f64::from(*v) * f64::from(*v);
            }
        }
        let mut scaler = DenseScaler {
            mean: vec![0.0; DENSE_LEN],
            scale: vec![1.0; DENSE_LEN],
        };
        for k in 0..DENSE_LEN {
            let m = mean[k] / n;
            let var = (sq[k] / n - m * m).max(0.0);
            scaler.mean[k] = m as f32;
            // A constant feature keeps scale 1 rather than exploding.
            scaler.scale[k] = if var > 1e-8 {
                (1.0 / var.sqrt()) as f32
            } else {
                1.0
            };
        }
        scaler
    }

    pub fn apply(&self, k: usize, value: f32) -> f32 {
        (value - self.mean[k]) * self.scale[k]
    }
}

/// Weights of the MLP as candle tensors (for scoring) and their plain copies (for reasons).
#[derive(Debug, Clone)]
pub struct Mlp {
    hidden: Linear,
    output: Linear,
    hidden_weight: Array2<f32>,
    hidden_bias: Array1<f32>,
    output_weight: Array1<f32>,
}

impl Mlp {
    pub fn from_tensors(
        hidden_weight: Tensor,
        hidden_bias: Tensor,
        output_weight: Tensor,
        output_bias: Tensor,
    ) -> candle_core::Result<Mlp> {
        let (h, f) = hidden_weight.dims2()?;
        let hw = Array2::from_shape_vec((h, f), hidden_weight.flatten_all()?.to_vec1::<f32>()?)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let hb = Array1::from(hidden_bias.to_vec1::<f32>()?);
        let ow = Array1::from(output_weight.flatten_all()?.to_vec1::<f32>()?);
        Ok(Mlp {
            hidden: Linear::new(hidden_weight, Some(hidden_bias)),
            output: Linear::new(output_weight, Some(output_bias)),
            hidden_weight: hw,
            hidden_bias: hb,
            output_weight: ow,
        })
    }

    pub fn tensors(&self) -> [(&'static str, Tensor); 4] {
        let bias = |l: &Linear| {
            l.bias().cloned().unwrap_or_else(|| {
                l.weight()
                    .zeros_like()
                    .unwrap_or_else(|_| l.weight().clone())
            })
        };
        [
            ("hidden.weight", self.hidden.weight().clone()),
            ("hidden.bias", bias(&self.hidden)),
            ("output.weight", self.output.weight().clone()),
            ("output.bias", bias(&self.output)),
        ]
    }

    pub fn forward(&self, inputs: &Tensor) -> candle_core::Result<Tensor> {
        self.output.forward(&self.hidden.forward(inputs)?.relu()?)
    }

    /// d logit / d input at `input`: exact for a ReLU network (it is piecewise linear).
    ///
    /// Only the hidden units the input switches on contribute, so their weight rows are
    /// added up directly, row by contiguous row.
    pub fn input_gradient(&self, input: &[f32]) -> Vec<f32> {
        let width = self.hidden_weight.ncols();
        let mut gradient = vec![0f32; width];
        if input.len() != width {
            return gradient;
        }
        for ((row, bias), out) in self
            .hidden_weight
            .rows()
            .into_iter()
            .zip(&self.hidden_bias)
            .zip(&self.output_weight)
        {
            let Some(row) = row.to_slice() else {
                continue;
            };
            if dot(row, input) + bias > 0.0 {
                for (g, w) in gradient.iter_mut().zip(row) {
                    *g += out * w;
                }
            }
        }
        gradient
    }
}

/// Trainable MLP parameters as candle `Var`s, seeded for reproducible runs.
pub struct TrainableMlp {
    pub vars: Vec<Var>,
    pub mlp: Mlp,
}

impl TrainableMlp {
    pub fn new(config: &NetworkConfig, seed: u64, device: &Device) -> candle_core::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (f, h) = (config.input_dim(), config.hidden);
        // He initialisation for the ReLU layer, small uniform for the output.
        let he = (2.0 / f as f64).sqrt() as f32;
        let mut normal = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    // Irwin–Hall approximation of a standard normal: good enough for init.
                    let s: f32 = (0..12).map(|_| rng.random::<f32>()).sum::<f32>() - 6.0;
                    s * scale
                })
                .collect()
        };
        let hw = Var::from_tensor(&Tensor::from_vec(normal(h * f, he), (h, f), device)?)?;
        let hb = Var::zeros(h, DType::F32, device)?;
        let ow = Var::from_tensor(&Tensor::from_vec(
            normal(h, 1.0 / (h as f32).sqrt()),
            (1, h),
            device,
        )?)?;
        let ob = Var::zeros(1, DType::F32, device)?;
        let mlp = Mlp::from_tensors(
            hw.as_tensor().clone(),
            hb.as_tensor().clone(),
            ow.as_tensor().clone(),
            ob.as_tensor().clone(),
        )?;
        Ok(TrainableMlp {
            vars: vec![hw, hb, ow, ob],
            mlp,
        })
    }

    /// A frozen copy of the current weights (the plain-array copies are refreshed too).
    pub fn snapshot(&self) -> candle_core::Result<Mlp> {
        let copy = |v: &Var| v.as_tensor().copy();
        Mlp::from_tensors(
            copy(&self.vars[0])?,
            copy(&self.vars[1])?,
            copy(&self.vars[2])?,
            copy(&self.vars[3])?,
        )
    }
}

/// Embedding table plus MLP: everything needed to turn features into a logit.
#[derive(Debug, Clone)]
pub struct Network {
    pub config: NetworkConfig,
    pub table: Array2<f32>,
    pub scaler: DenseScaler,
    pub mlp: Mlp,
}

impl Network {
    /// Writes one listing's model input (mean embedding, then scaled dense features) into `out`.
    pub fn input_row(
        table: &Array2<f32>,
        scaler: &DenseScaler,
        features: &Features,
        out: &mut [f32],
    ) {
        let dim = table.ncols();
        let (pooled, dense) = out.split_at_mut(dim);
        pooled.fill(0.0);
        if !features.ids.is_empty() {
            for &id in &features.ids {
                let row = table.row(id as usize);
                // Rows of a standard-layout Array2 are contiguous.
                if let Some(values) = row.as_slice() {
                    for (p, v) in pooled.iter_mut().zip(values) {
                        *p += v;
                    }
                }
            }
            let inv = 1.0 / features.ids.len() as f32;
            pooled.iter_mut().for_each(|p| *p *= inv);
        }
        for (k, d) in dense.iter_mut().enumerate() {
            *d = scaler.apply(k, features.dense[k]);
        }
    }

    pub fn inputs(&self, batch: &[&Features]) -> Vec<f32> {
        let width = self.config.input_dim();
        let mut data = vec![0f32; batch.len() * width];
        for (features, out) in batch.iter().zip(data.chunks_mut(width)) {
            Self::input_row(&self.table, &self.scaler, features, out);
        }
        data
    }

    /// Raw (uncalibrated) logits for a batch.
    pub fn logits(&self, batch: &[&Features]) -> candle_core::Result<Vec<f32>> {
        self.logits_from_inputs(&self.inputs(batch), batch.len())
    }

    /// Raw logits for `rows` model inputs laid out as [`Network::inputs`] writes them.
    pub fn logits_from_inputs(&self, inputs: &[f32], rows: usize) -> candle_core::Result<Vec<f32>> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let inputs = Tensor::from_slice(inputs, (rows, self.config.input_dim()), &Device::Cpu)?;
        self.mlp.forward(&inputs)?.flatten_all()?.to_vec1::<f32>()
    }
}

/// Dot product of two equally long slices.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums: a single running sum is a dependency chain the compiler
    // may not reorder (float addition is not associative), so it would not vectorise.
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network() -> Network {
        let config = NetworkConfig {
            embedding_dim: 4,
            hidden: 8,
        };
        let trainable = TrainableMlp::new(&config, 7, &Device::Cpu).unwrap();
        let mut table = Array2::zeros((16, 4));
        table.row_mut(3).fill(1.0);
        table.row_mut(5).fill(-1.0);
        Network {
            config,
            table,
            scaler: DenseScaler {
                mean: vec![0.0; DENSE_LEN],
                scale: vec![1.0; DENSE_LEN],
            },
            mlp: trainable.snapshot().unwrap(),
        }
    }

    #[test]
    fn input_row_is_the_mean_embedding_then_dense() {
        let net = network();
        let f = Features {
            ids: vec![3, 3, 5, 0],
            dense: [2.0; DENSE_LEN],
            unknown: 0,
            brand: None,
            registered_price: false,
            reviewed: None,
        };
        let mut out = vec![0f32; net.config.input_dim()];
        Network::input_row(&net.table, &net.scaler, &f, &mut out);
        assert_eq!(&out[..4], &[0.25; 4]);
        assert!(out[4..].iter().all(|v| *v == 2.0));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let net = network();
        let f = Features {
            ids: vec![3, 5, 5],
            dense: [0.3; DENSE_LEN],
            unknown: 0,
            brand: None,
            registered_price: false,
            reviewed: None,
        };
        let mut x = vec![0f32; net.config.input_dim()];
        Network::input_row(&net.table, &net.scaler, &f, &mut x);
        let logit = |x: &[f32]| -> f32 {
            let t = Tensor::from_slice(x, (1, x.len()), &Device::Cpu).unwrap();
            net.mlp
                .forward(&t)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0]
        };
        let grad = net.mlp.input_gradient(&x);
        for k in 0..x.len() {
            let mut xp = x.clone();
            xp[k] += 1e-3;
            let numeric = (logit(&xp) - logit(&x)) / 1e-3;
            assert!(
                (numeric - grad[k]).abs() < 2e-2,
                "k={k}: {numeric} vs {}",
                grad[k]
            );
        }
    }

    #[test]
    fn dot_matches_the_plain_sum_at_any_length() {
        for len in [0, 1, 7, 8, 9, 32, 43] {
            let a: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..len).map(|i| 1.0 / (i as f32 + 1.0)).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let config = NetworkConfig::default();
        let a = TrainableMlp::new(&config, 1, &Device::Cpu)
            .unwrap()
            .snapshot()
            .unwrap();
        let b = TrainableMlp::new(&config, 1, &Device::Cpu)
            .unwrap()
            .snapshot()
            .unwrap();
        let c = TrainableMlp::new(&config, 2, &Device::Cpu)
            .unwrap()
            .snapshot()
            .unwrap();
        assert_eq!(a.hidden_weight, b.hidden_weight);
        assert_ne!(a.hidden_weight, c.hidden_weight);
    }
}
