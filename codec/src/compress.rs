//! The optional zstd lossless stage (feature `zstd`). lz4 lives inline in `tensor`.

use crate::coding::Compression;
use crate::error::CodecError;

/// zstd level: 1 is the fastest standard level; quantised features compress almost as well at 1
/// as at higher levels, and the device CPU is the scarce resource.
const LEVEL: i32 = 1;

/// Lazily created zstd contexts, reused across tensors.
#[derive(Default)]
pub(crate) struct Zstd {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

fn failed(e: std::io::Error) -> CodecError {
    CodecError::Decompress { compression: Compression::Zstd, source: Box::new(e) }
}

impl Zstd {
    pub fn compress(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<(), CodecError> {
        let compressor = match &mut self.compressor {
            Some(c) => c,
            slot @ None => slot.insert(
                zstd::bulk::Compressor::new(LEVEL)
                    .map_err(|e| CodecError::Compress { compression: Compression::Zstd, source: Box::new(e) })?,
            ),
        };
        dst.clear();
        dst.resize(zstd::zstd_safe::compress_bound(src.len()), 0);
        let written = compressor
            .compress_to_buffer(src, dst.as_mut_slice())
            .map_err(|e| CodecError::Compress { compression: Compression::Zstd, source: Box::new(e) })?;
        dst.truncate(written);
        Ok(())
    }

    /// Decompresses into exactly `raw_len` bytes of `dst`; output beyond that is an error.
    pub fn decompress(&mut self, src: &[u8], raw_len: usize, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        let decompressor = match &mut self.decompressor {
            Some(d) => d,
            slot @ None => slot.insert(zstd::bulk::Decompressor::new().map_err(failed)?),
        };
        dst.resize(raw_len, 0);
        let written = decompressor.decompress_to_buffer(src, dst.as_mut_slice()).map_err(failed)?;
        dst.truncate(written);
        Ok(())
    }
}
