//! tract (sonos/tract, pure Rust) as an independent runtime for ONNX files: the tests check
//! that what `tandem export` writes runs there with burn's predictions, and `tandem bench
//! engines` times it beside ONNX Runtime and burn. It is not an engine of the online path.

use tract_onnx::prelude::*;

use crate::error::EngineError;

/// An ONNX file loaded, optimised for one input shape and ready to run.
#[derive(Debug)]
pub struct TractModel {
    plan: std::sync::Arc<TypedSimplePlan>,
    input: [usize; 4],
}

fn err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Runtime(format!("tract: {e:#}"))
}

impl TractModel {
    /// Load `bytes` for inputs of exactly `input` (NCHW).
    pub fn load(bytes: &[u8], input: [usize; 4]) -> Result<TractModel, EngineError> {
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(err)?
            .with_input_fact(0, f32::fact(input).into())
            .map_err(err)?
            .into_optimized()
            .map_err(err)?
            .into_runnable()
            .map_err(err)?;
        Ok(TractModel { plan, input })
    }

    /// Run on `x` (of the loaded shape); the output values and shape.
    pub fn run(&self, x: &[f32]) -> Result<(Vec<f32>, Vec<usize>), EngineError> {
        let t = Tensor::from_shape(&self.input, x).map_err(err)?;
        let out = self.plan.run(tvec!(t.into_tvalue())).map_err(err)?;
        let y = out.first().ok_or_else(|| err("no output"))?;
        let view = y.to_plain_array_view::<f32>().map_err(err)?;
        Ok((view.iter().copied().collect(), view.shape().to_vec()))
    }
}
