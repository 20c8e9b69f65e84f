//! Filter surgery: physically remove output channels of one conv and everything that depended
//! on them — the conv's weight rows, its batch-norm γ, β **and running mean/variance** (the
//! authors' code rebuilt batch norm and lost the running statistics), and the input channels of
//! the next conv or the classifier's input features. Pure array bookkeeping on a [`ParamMap`].

use crate::error::{ModelError, Result};
use crate::params::ParamMap;
use crate::zoo::NetSpec;
use std::collections::{BTreeMap, BTreeSet};

fn conv_key(i: usize) -> String {
    format!("blocks.{i}.conv.weight")
}

/// Remove the given filters (output channels) from the given convs, all at once.
///
/// `removals[conv]` lists channel indices of the *current* spec. A layer is never emptied: a
/// request that would leave a conv with no filter is an error.
pub fn remove_filters(
    params: &ParamMap,
    spec: &NetSpec,
    removals: &BTreeMap<usize, Vec<usize>>,
) -> Result<(ParamMap, NetSpec)> {
    let mut out = params.clone();
    let mut new_spec = spec.clone();
    let n_convs = spec.widths.len();
    for (&conv, remove) in removals {
        if conv >= n_convs {
            return Err(ModelError::BadSpec(format!("conv {conv} does not exist ({n_convs} convs)")));
        }
        let width = spec.widths[conv];
        let remove: BTreeSet<usize> = remove.iter().copied().collect();
        if let Some(&bad) = remove.iter().find(|&&k| k >= width) {
            return Err(ModelError::BadSpec(format!("conv {conv} has {width} filters, cannot remove #{bad}")));
        }
        let keep: Vec<usize> = (0..width).filter(|k| !remove.contains(k)).collect();
        if keep.is_empty() {
            return Err(ModelError::BadSpec(format!("removing every filter of conv {conv} would empty the layer")));
        }
        if remove.is_empty() {
            continue;
        }
        // The conv itself and its batch norm.
        let w = out.get(&conv_key(conv))?.select(0, &keep);
        out.0.insert(conv_key(conv), w);
        for stat in ["gamma", "beta", "running_mean", "running_var"] {
            let key = format!("blocks.{conv}.bn.{stat}");
            let a = out.get(&key)?.select(0, &keep);
            out.0.insert(key, a);
        }
        // Its consumer: the next conv's input channels, or the classifier's input features.
        if conv + 1 < n_convs {
            let key = conv_key(conv + 1);
            let a = out.get(&key)?.select(1, &keep);
            out.0.insert(key, a);
        } else {
            let plane = spec.classifier_inputs() / width;
            let rows: Vec<usize> = keep.iter().flat_map(|&k| k * plane..(k + 1) * plane).collect();
            let a = out.get("classifier.weight")?.select(0, &rows);
            out.0.insert("classifier.weight".into(), a);
        }
        new_spec.widths[conv] = keep.len();
    }
    new_spec.validate()?;
    Ok((out, new_spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Array;
    use crate::zoo::Arch;

    #[test]
    fn refuses_to_empty_a_layer_or_remove_missing_filters() {
        let spec = NetSpec::new(Arch::Alexnet, 1, 32, 10, vec![2, 2, 2, 2, 2]).expect("valid");
        let mut p = ParamMap::default();
        p.0.insert(conv_key(0), Array::new(vec![2, 1, 11, 11], vec![0.0; 242]).expect("shape"));
        let all = BTreeMap::from([(0, vec![0, 1])]);
        assert!(remove_filters(&p, &spec, &all).expect_err("empty").to_string().contains("empty the layer"));
        let oob = BTreeMap::from([(0, vec![5])]);
        assert!(remove_filters(&p, &spec, &oob).is_err());
        let no_conv = BTreeMap::from([(9, vec![0])]);
        assert!(remove_filters(&p, &spec, &no_conv).is_err());
    }
}
