//! A model's tensors as a plain ordered map `name → (shape, f32 values)`.
//!
//! Filter surgery is index bookkeeping on arrays; doing it here, away from burn's module types,
//! keeps it a pure function that tests can check element by element. [`ParamMap::apply`] loads
//! a map into a module built from the new spec and refuses any missing or mis-shaped tensor.

use crate::error::{ModelError, Result};
use burn::module::Module;
use burn::store::burn_pack::{Bytes, DType, Tensor as PackTensor};
use burn::store::{ApplyError, ModuleSnapshot};
use std::collections::BTreeMap;

/// One dense f32 array.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Array {
    /// An array, checking that the data fills the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(ModelError::BadSpec(format!("{} values for shape {shape:?}", data.len())));
        }
        Ok(Self { shape, data })
    }

    /// Keep only the given indices along `axis` (in the given order).
    pub fn select(&self, axis: usize, keep: &[usize]) -> Array {
        let outer: usize = self.shape[..axis].iter().product();
        let dim = self.shape[axis];
        let inner: usize = self.shape[axis + 1..].iter().product();
        let mut data = Vec::with_capacity(outer * keep.len() * inner);
        for o in 0..outer {
            for &k in keep {
                let start = (o * dim + k) * inner;
                data.extend_from_slice(&self.data[start..start + inner]);
            }
        }
        let mut shape = self.shape.clone();
        shape[axis] = keep.len();
        Array { shape, data }
    }
}

/// All tensors of a module, keyed by burn module path (`blocks.3.conv.weight`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamMap(pub BTreeMap<String, Array>);

impl ParamMap {
    /// Read every float tensor of a module (parameters and batch-norm running statistics).
    pub fn from_module<M: Module>(module: &M) -> Result<Self> {
        let mut map = BTreeMap::new();
        for t in module.collect(None, None, false) {
            let (name, dtype, shape, _, bytes) =
                t.into_parts().map_err(|e| ModelError::BadSpec(format!("reading tensor: {e}")))?;
            if dtype != DType::F32 {
                return Err(ModelError::BadSpec(format!("tensor {name} has dtype {dtype:?}, expected f32")));
            }
            let data: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            map.insert(name, Array::new(shape.to_vec(), data)?);
        }
        Ok(Self(map))
    }

    /// Load this map into `module`; every tensor must be present with the module's shape.
    pub fn apply<M: Module>(&self, mut module: M) -> Result<M> {
        let tensors: Vec<PackTensor> = self
            .0
            .iter()
            .map(|(name, a)| {
                PackTensor::new(name.clone(), DType::F32, a.shape.clone(), None, Bytes::from_elems(a.data.clone()))
            })
            .collect();
        let result = module.apply(tensors, None, None, false);
        if let Some(err) = result.errors.into_iter().next() {
            return Err(match err {
                ApplyError::ShapeMismatch { path, expected, found } => {
                    ModelError::ShapeMismatch { name: path, expected: expected.to_vec(), got: found.to_vec() }
                }
                other => ModelError::BadSpec(format!("loading tensors: {other:?}")),
            });
        }
        if let Some((name, _)) = result.missing.into_iter().next() {
            return Err(ModelError::MissingTensor(name));
        }
        Ok(module)
    }

    /// A tensor by name.
    pub fn get(&self, name: &str) -> Result<&Array> {
        self.0.get(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }
}
