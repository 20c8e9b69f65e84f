//! Write the tests' tiny random-weight VGG series (`tandem_actors::testkit::tiny_series`) to DIR,
//! so a long soak can run without a trained series (docs/RELIABILITY.md, the faulted soak):
//!
//! ```sh
//! cargo test --release --workspace --locked --no-run   # builds target/release/examples/tiny_series
//! target/release/examples/tiny_series artifacts/tiny-series
//! ```

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: tiny_series DIR"))?;
    tandem_actors::testkit::tiny_series(std::path::Path::new(&dir))?;
    println!("wrote the tiny series to {dir}");
    Ok(())
}
