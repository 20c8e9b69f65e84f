//! The shared tiny series (see `tandem_models::testkit`), unwrapped for tests.

use std::path::Path;
use tandem_models::series::Series;

pub use tandem_models::testkit::test_images;

/// Write the tiny series into `dir`.
pub fn tiny_series(dir: &Path) -> Series {
    tandem_models::testkit::tiny_series(dir).expect("write the tiny series")
}
