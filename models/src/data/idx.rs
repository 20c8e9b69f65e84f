//! Gzipped IDX files (the MNIST family's format): a big-endian header `0 0 type ndims`, one u32
//! per dimension, then the data. Sizes are checked against the header before anything large is
//! allocated, so a corrupt header cannot make us reserve gigabytes.

use super::Dataset;
use crate::error::{ModelError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Largest IDX payload we accept (the MNIST training images are 47 MB).
const MAX_IDX_BYTES: u64 = 512 << 20;

/// Fashion-MNIST channel statistics on [0, 1] pixels of the 28×28 training images.
pub(crate) const FMNIST_MEAN: f32 = 0.2860;
pub(crate) const FMNIST_STD: f32 = 0.3530;

/// Pad 28 → 32 like the CIFAR-style networks expect (2 px of zeros on each side).
const PAD: usize = 2;

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut out = Vec::new();
    GzDecoder::new(file)
        .take(MAX_IDX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| ModelError::bad_data(path, format!("not a readable gzip file: {e}")))?;
    if out.len() as u64 > MAX_IDX_BYTES {
        return Err(ModelError::bad_data(path, format!("larger than the {MAX_IDX_BYTES}-byte limit")));
    }
    Ok(out)
}

/// Parse an IDX header and return (dims, data offset).
fn parse_header(path: &Path, bytes: &[u8], want_type: u8, want_ndims: u8) -> Result<(Vec<usize>, usize)> {
    if bytes.len() < 4 {
        return Err(ModelError::bad_data(path, format!("truncated: {} bytes, no IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != want_type || bytes[3] != want_ndims {
        return Err(ModelError::bad_data(
            path,
            format!(
                "wrong magic {:02x}{:02x}{:02x}{:02x}: expected 0000{want_type:02x}{want_ndims:02x}",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    let header_len = 4 + 4 * want_ndims as usize;
    if bytes.len() < header_len {
        return Err(ModelError::bad_data(path, "truncated inside the IDX header"));
    }
    let dims: Vec<usize> =
        bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let total = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    match total {
        Some(t) if t <= MAX_IDX_BYTES => {
            let have = (bytes.len() - header_len) as u64;
            if have != t {
                return Err(ModelError::bad_data(
                    path,
                    format!("truncated or oversized: header declares {dims:?} = {t} bytes of data, file has {have}"),
                ));
            }
        }
        _ => return Err(ModelError::bad_data(path, format!("header declares too much data: {dims:?}"))),
    }
    Ok((dims, header_len))
}

/// Read an IDX3 (u8, 3 dims) image file: returns (count, rows, cols, pixels).
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = read_gz(path)?;
    let (dims, off) = parse_header(path, &bytes, 0x08, 3)?;
    Ok((dims[0], dims[1], dims[2], bytes[off..].to_vec()))
}

/// Read an IDX1 (u8, 1 dim) label file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_gz(path)?;
    let (_, off) = parse_header(path, &bytes, 0x08, 1)?;
    Ok(bytes[off..].to_vec())
}

fn load_split(dir: &Path, prefix: &str) -> Result<Dataset> {
    let img_path: PathBuf = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let lbl_path: PathBuf = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    let (n, rows, cols, raw) = read_idx_images(&img_path)?;
    let labels = read_idx_labels(&lbl_path)?;
    if labels.len() != n {
        return Err(ModelError::bad_data(
            &lbl_path,
            format!("{} labels for {n} images in {}", labels.len(), img_path.display()),
        ));
    }
    if rows != cols || rows == 0 {
        return Err(ModelError::bad_data(&img_path, format!("images are {rows}×{cols}, expected square")));
    }
    let size = rows + 2 * PAD;
    let mut pixels = vec![0u8; n * size * size];
    for i in 0..n {
        let src = &raw[i * rows * cols..(i + 1) * rows * cols];
        let dst = &mut pixels[i * size * size..(i + 1) * size * size];
        for r in 0..rows {
            dst[(r + PAD) * size + PAD..(r + PAD) * size + PAD + cols].copy_from_slice(&src[r * cols..(r + 1) * cols]);
        }
    }
    let ds =
        Dataset { pixels, labels, channels: 1, size, num_classes: 10, mean: vec![FMNIST_MEAN], std: vec![FMNIST_STD] };
    ds.validate(&lbl_path)?;
    Ok(ds)
}

/// Load Fashion-MNIST (train and t10k) from a directory of gzipped IDX files, padded to 32×32.
pub fn load_fashion_mnist(dir: &Path) -> Result<super::Splits> {
    if !dir.is_dir() {
        return Err(ModelError::bad_data(
            dir,
            "no such directory (install Debian's dataset-fashion-mnist package or pass --data DIR)",
        ));
    }
    Ok(super::Splits { train: load_split(dir, "train")?, test: load_split(dir, "t10k")?, name: "fashion-mnist".into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).expect("in-memory write");
        e.finish().expect("in-memory finish")
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, gz(bytes)).expect("write temp file");
        p
    }

    fn idx3(n: u32, r: u32, c: u32, data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 3];
        for d in [n, r, c] {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn reads_a_valid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "a.gz", &idx3(2, 2, 2, &[1, 2, 3, 4, 5, 6, 7, 8]));
        let (n, r, c, px) = read_idx_images(&p).expect("valid");
        assert_eq!((n, r, c), (2, 2, 2));
        assert_eq!(px, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn rejects_wrong_magic_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = idx3(1, 1, 1, &[0]);
        bytes[2] = 0x0d;
        let p = write(dir.path(), "bad-magic.gz", &bytes);
        let err = read_idx_images(&p).expect_err("bad magic").to_string();
        assert!(err.contains("bad-magic.gz") && err.contains("wrong magic"), "{err}");
    }

    #[test]
    fn rejects_truncated_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "short.gz", &idx3(3, 2, 2, &[0; 7]));
        let err = read_idx_images(&p).expect_err("truncated").to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn rejects_huge_declared_size_without_allocating() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "huge.gz", &idx3(u32::MAX, u32::MAX, 2, &[]));
        let err = read_idx_images(&p).expect_err("huge").to_string();
        assert!(err.contains("too much data"), "{err}");
    }

    #[test]
    fn rejects_non_gzip_and_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("plain");
        std::fs::write(&p, b"not gzip at all").expect("write");
        assert!(read_idx_labels(&p).expect_err("not gzip").to_string().contains("gzip"));
        assert!(matches!(read_idx_labels(&dir.path().join("nope")), Err(ModelError::Io { .. })));
    }

    #[test]
    fn rejects_out_of_range_labels_and_count_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "train-images-idx3-ubyte.gz", &idx3(2, 28, 28, &[0; 2 * 784]));
        write(dir.path(), "train-labels-idx1-ubyte.gz", &[0, 0, 8, 1, 0, 0, 0, 2, 3, 12]);
        let err = load_split(dir.path(), "train").expect_err("label 12").to_string();
        assert!(err.contains("label 12 out of range"), "{err}");
        write(dir.path(), "train-labels-idx1-ubyte.gz", &[0, 0, 8, 1, 0, 0, 0, 1, 3]);
        let err = load_split(dir.path(), "train").expect_err("count").to_string();
        assert!(err.contains("1 labels for 2 images"), "{err}");
    }

    #[test]
    fn pads_28_to_32_with_zeros() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "train-images-idx3-ubyte.gz", &idx3(1, 28, 28, &[255; 784]));
        write(dir.path(), "train-labels-idx1-ubyte.gz", &[0, 0, 8, 1, 0, 0, 0, 1, 3]);
        let ds = load_split(dir.path(), "train").expect("valid");
        assert_eq!(ds.size, 32);
        let img = ds.image(0);
        assert_eq!(img[0], 0);
        assert_eq!(img[2 * 32 + 2], 255);
        assert_eq!(img[29 * 32 + 29], 255);
        assert_eq!(img[30 * 32 + 30], 0);
        assert_eq!(img.iter().filter(|&&p| p == 255).count(), 784);
    }
}
