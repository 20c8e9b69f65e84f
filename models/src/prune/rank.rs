//! First-order Taylor ranking of conv filters (Molchanov et al. 2016, as in the authors' code).
//!
//! For filter k of a conv with output activation a: v_k = Σ over the ranking pass of
//! mean_{batch,h,w}(a · ∂L/∂a), accumulated signed, then rank_k = |v_k| / ‖v‖₂ within the
//! layer. burn gives no gradient of an intermediate activation, so each conv output is
//! multiplied by a ones "gate" of shape [B, C, 1, 1] that requires grad: ∂L/∂gate[b, c] is
//! exactly Σ_{h,w} a·∂L/∂a for example b, channel c. Summing the gate gradient over b gives the
//! authors' signed sum; taking |·| per example first gives Molchanov's paper variant.
//!
//! Ranking runs on a copy of the model, so it is a pure function of (model, batches): it changes
//! nothing, not even batch-norm running statistics. [`BatchNormMode`] says whether that copy's
//! batch norm uses its running statistics (eval mode, frozen: no parameter gradients) or each
//! batch's own statistics (train mode, as the authors' PyTorch code ranks after `model.train()`;
//! the copy's running statistics move and are thrown away with it).

use crate::data::Batch;
use crate::error::{ModelError, Result};
use crate::zoo::{Net, Tap, Unit};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Which Taylor criterion to accumulate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaylorVariant {
    /// Signed sum over the pass, absolute value at the end (the authors' code).
    #[default]
    Signed,
    /// Absolute value per example before averaging (Molchanov et al.'s paper).
    PerExampleAbs,
}

/// How batch norm behaves during the ranking pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchNormMode {
    /// Running statistics, as at inference (a frozen copy).
    #[default]
    Eval,
    /// Each batch's statistics, as during training (the authors' code).
    Train,
}

/// Per-filter Taylor scores for the convs in `layers` (all convs when `None`), normalised per
/// layer to unit L2 norm. Layers not ranked get an empty vector.
pub fn taylor_scores(
    net: &Net,
    batches: impl IntoIterator<Item = Batch>,
    layers: Option<&[usize]>,
    variant: TaylorVariant,
    batch_norm: BatchNormMode,
) -> Result<Vec<Vec<f64>>> {
    let raw = taylor_raw(net, batches, layers, variant, batch_norm)?;
    Ok(raw.into_iter().map(|v| normalise(&v)).collect())
}

/// `|v| / ‖v‖₂`; a zero vector stays zero.
pub fn normalise(v: &[f64]) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| if norm > 0.0 { x.abs() / norm } else { 0.0 }).collect()
}

/// The accumulated scores before normalisation (signed for [`TaylorVariant::Signed`]).
pub fn taylor_raw(
    net: &Net,
    batches: impl IntoIterator<Item = Batch>,
    layers: Option<&[usize]>,
    variant: TaylorVariant,
    batch_norm: BatchNormMode,
) -> Result<Vec<Vec<f64>>> {
    let spec = net.spec.clone();
    let n_convs = spec.widths.len();
    let wanted: Vec<bool> = (0..n_convs).map(|c| layers.is_none_or(|l| l.contains(&c))).collect();
    // Spatial size of each conv's output, for the mean over h, w.
    let points = spec.points();
    let mut hw = vec![1usize; n_convs];
    for (i, u) in spec.units().iter().enumerate() {
        if let Unit::Conv { conv, .. } = *u {
            hw[conv] = points[i + 1].shape[1] * points[i + 1].shape[2];
        }
    }
    // Rank on the device the model lives on, with autodiff for the gate gradients.
    let ad = net.devices().into_iter().next().unwrap_or_else(crate::device::cpu).autodiff();
    // `valid()` copies the running statistics into new state, so a train-mode pass cannot write
    // through to `net`; it also turns the batch norms' training flags off, and `train()` turns
    // them back on. A train-mode copy has parameters that require grad, and burn's autodiff
    // consumes their graph nodes on each backward, so it is made afresh for every batch.
    let frozen = (batch_norm == BatchNormMode::Eval).then(|| net.valid().to_device(&ad).freeze());
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut acc: Vec<Vec<f64>> =
        (0..n_convs).map(|c| if wanted[c] { vec![0.0; spec.widths[c]] } else { Vec::new() }).collect();
    let mut seen = 0usize;
    for batch in batches {
        let b = batch.len;
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.images, [b, spec.in_channels, spec.input_size, spec.input_size]),
            &ad,
        );
        let y = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [b]), &ad);
        let gates: Vec<Option<Tensor<4>>> = (0..n_convs)
            .map(|c| wanted[c].then(|| Tensor::<4>::ones([b, spec.widths[c], 1, 1], &ad).require_grad()))
            .collect();
        let fresh;
        let model = match &frozen {
            Some(m) => m,
            None => {
                fresh = net.valid().train().to_device(&ad);
                &fresh
            }
        };
        let out = model.forward_tapped(x, 0, spec.end(), &mut |c, tap, t| match (tap, &gates[c]) {
            (Tap::ConvOut, Some(g)) => t * g.clone(),
            _ => t,
        });
        let loss = loss_fn.forward(out.flatten::<2>(1, 3), y);
        let grads = loss.backward();
        for (c, gate) in gates.iter().enumerate() {
            let Some(gate) = gate else { continue };
            let g = gate
                .grad(&grads)
                .ok_or_else(|| ModelError::BadSpec(format!("no gradient reached the gate of conv {c}")))?
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| ModelError::BadSpec(format!("gate gradient: {e:?}")))?;
            let width = spec.widths[c];
            let denom = (b * hw[c]) as f64;
            for (k, slot) in acc[c].iter_mut().enumerate() {
                let per_example = (0..b).map(|e| g[e * width + k] as f64);
                *slot += match variant {
                    TaylorVariant::Signed => per_example.sum::<f64>() / denom,
                    TaylorVariant::PerExampleAbs => per_example.map(f64::abs).sum::<f64>() / denom,
                };
            }
        }
        seen += b;
    }
    if seen == 0 {
        return Err(ModelError::Config("ranking pass saw no images".into()));
    }
    Ok(acc)
}
