//! CIFAR-10 "binary version": `data_batch_{1..5}.bin` and `test_batch.bin`, each a sequence of
//! 3073-byte records (label, then 3×32×32 pixels, CHW).

use super::{Dataset, Splits};
use crate::error::{ModelError, Result};
use std::path::Path;

const RECORD: usize = 1 + 3 * 32 * 32;
pub(crate) const MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
pub(crate) const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

fn read_batches(dir: &Path, names: &[&str]) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(ModelError::bad_data(
                &path,
                format!("{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records", bytes.len()),
            ));
        }
        for rec in bytes.chunks_exact(RECORD) {
            if rec[0] >= 10 {
                return Err(ModelError::bad_data(&path, format!("label {} out of range 0..10", rec[0])));
            }
            labels.push(rec[0]);
            pixels.extend_from_slice(&rec[1..]);
        }
    }
    Ok(Dataset { pixels, labels, channels: 3, size: 32, num_classes: 10, mean: MEAN.to_vec(), std: STD.to_vec() })
}

/// Load CIFAR-10 from a directory holding the binary batches.
pub fn load_cifar10(dir: &Path) -> Result<Splits> {
    let train = read_batches(
        dir,
        &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
    )?;
    let test = read_batches(dir, &["test_batch.bin"])?;
    train.validate(dir)?;
    test.validate(dir)?;
    Ok(Splits { train, test, name: "cifar10".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_and_rejects_partial_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rec = vec![7u8];
        rec.extend(std::iter::repeat_n(9u8, RECORD - 1));
        std::fs::write(dir.path().join("test_batch.bin"), [rec.clone(), rec.clone()].concat()).expect("write");
        let ds = read_batches(dir.path(), &["test_batch.bin"]).expect("valid");
        assert_eq!(ds.labels, vec![7, 7]);
        assert_eq!(ds.image(1)[0], 9);
        std::fs::write(dir.path().join("test_batch.bin"), &rec[..100]).expect("write");
        let err = read_batches(dir.path(), &["test_batch.bin"]).expect_err("partial").to_string();
        assert!(err.contains("test_batch.bin") && err.contains("whole number"), "{err}");
    }
}
