//! Real intermediate tensors on disk, for the codec benchmark (`TANDEM_CODEC_TENSORS=DIR`).
//!
//! Each tensor is two files with a common stem: `STEM.f32`, the values as little-endian f32,
//! row-major; and `STEM.shape`, the dimensions in decimal separated by spaces plus a newline
//! (`1 32 16 16`). Stems are `MODEL_POINT_IMAGE` (`original_pool2_000`).

use std::path::{Path, PathBuf};

use tandem_models::data::Dataset;
use tandem_models::series::Series;

use crate::error::{ProfileError, Result};
use crate::exec::{activations, image_tensor};
use crate::profile::load_member;

/// Which tensors to dump.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DumpOptions {
    /// Series member id; `None` = the original model.
    pub model: Option<u32>,
    /// Point names or indices; empty = every pool point (every point before `end` if the
    /// architecture has none).
    pub points: Vec<String>,
    /// Test images per point (at least 1).
    pub images: usize,
}

/// One dumped tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct DumpedTensor {
    /// The `.f32` file (its `.shape` sibling has the same stem).
    pub path: PathBuf,
    /// Point name.
    pub point: String,
    /// `[1, C, H, W]`.
    pub shape: Vec<usize>,
}

/// Write `STEM.f32` and `STEM.shape` into `dir`; returns the `.f32` path.
pub fn write_tensor(dir: &Path, stem: &str, data: &[f32], shape: &[usize]) -> Result<PathBuf> {
    let elements: usize = shape.iter().product();
    if elements != data.len() {
        return Err(ProfileError::Options(format!(
            "tensor {stem}: shape {shape:?} holds {elements} values, got {}",
            data.len()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| ProfileError::io(dir, e))?;
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = dir.join(format!("{stem}.f32"));
    std::fs::write(&path, bytes).map_err(|e| ProfileError::io(&path, e))?;
    let shape_path = dir.join(format!("{stem}.shape"));
    let text = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ") + "\n";
    std::fs::write(&shape_path, text).map_err(|e| ProfileError::io(&shape_path, e))?;
    Ok(path)
}

/// Read a tensor written by [`write_tensor`] (`path` is the `.f32` file).
pub fn read_tensor(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let shape_path = path.with_extension("shape");
    let text = std::fs::read_to_string(&shape_path).map_err(|e| ProfileError::io(&shape_path, e))?;
    let shape = text
        .split_whitespace()
        .map(|t| t.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ProfileError::Options(format!("{}: bad dimension: {e}", shape_path.display())))?;
    let bytes = std::fs::read(path).map_err(|e| ProfileError::io(path, e))?;
    let elements: usize = shape.iter().product();
    if bytes.len() != elements * 4 {
        return Err(ProfileError::Options(format!(
            "{}: {} bytes for shape {shape:?} ({} expected)",
            path.display(),
            bytes.len(),
            elements * 4
        )));
    }
    let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((data, shape))
}

/// Run a member of the series in `series_dir` on test images and dump its tensors at the chosen
/// points into `out_dir`.
pub fn dump_tensors(
    series_dir: &Path,
    opts: &DumpOptions,
    test: &Dataset,
    out_dir: &Path,
) -> Result<Vec<DumpedTensor>> {
    let series = Series::load(series_dir)?;
    let member = match opts.model {
        Some(id) => series.member(id)?.clone(),
        None => series
            .original()
            .cloned()
            .ok_or_else(|| ProfileError::Options("the series has no original model".into()))?,
    };
    let spec = series.spec_of(&member)?;
    let all = spec.points();
    let end = spec.end();
    let mut chosen: Vec<usize> = if opts.points.is_empty() {
        let pools: Vec<usize> = all.iter().filter(|p| p.name.starts_with("pool")).map(|p| p.index).collect();
        if pools.is_empty() { (0..end).collect() } else { pools }
    } else {
        opts.points.iter().map(|name| spec.point(name).map(|p| p.index)).collect::<Result<Vec<_>, _>>()?
    };
    if let Some(&p) = chosen.iter().find(|&&p| p >= end) {
        return Err(ProfileError::Options(format!("point {} is `end`: nothing is sent there", all[p].name)));
    }
    chosen.sort_unstable();
    chosen.dedup();
    let images = opts.images.max(1).min(test.len());
    if images == 0 || test.channels != spec.in_channels || test.size != spec.input_size {
        return Err(ProfileError::DataMismatch(format!(
            "{} test images of {}x{}x{} for a model taking {}x{}x{}",
            test.len(),
            test.channels,
            test.size,
            test.size,
            spec.in_channels,
            spec.input_size,
            spec.input_size
        )));
    }
    let device = tandem_models::device::cpu();
    let net = load_member(&series, series_dir, &member, &device)?;
    let mut out = Vec::with_capacity(images * chosen.len());
    for i in 0..images {
        let acts = activations(&net, image_tensor(test, i, &device))?;
        for &p in &chosen {
            let act = &acts[p];
            let stem = format!("{}_{}_{i:03}", member.name, all[p].name);
            let path = write_tensor(out_dir, &stem, &act.data, &act.shape)?;
            out.push(DumpedTensor { path, point: all[p].name.clone(), shape: act.shape.to_vec() });
        }
    }
    Ok(out)
}
