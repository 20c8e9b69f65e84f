//! The accuracy cost of 8-bit and 4-bit coding at each pool point of a series member:
//!
//! ```text
//! cargo run --release -p tandem-profiler --example coding_accuracy -- SERIES_DIR [IMAGES] [MODEL_ID]
//! ```
//! Test images come from the data set named in the manifest (default location); the model
//! defaults to the original.

use std::path::PathBuf;

use tandem_codec::Coding;
use tandem_models::series::Series;
use tandem_profiler::{coding_accuracy, load_member, load_test_set};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: coding_accuracy SERIES_DIR [IMAGES] [MODEL_ID]")?);
    let images: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let series = Series::load(&dir)?;
    let member = match args.next() {
        Some(id) => series.member(id.parse()?)?.clone(),
        None => series.original().cloned().ok_or("the series has no original model")?,
    };
    let test = load_test_set(&series, None, None)?;
    let net = load_member(&series, &dir, &member, &tandem_models::device::cpu())?;
    let pools: Vec<usize> =
        series.base.points().iter().filter(|p| p.name.starts_with("pool")).map(|p| p.index).collect();
    let codings = [Coding::Q8_LZ4, Coding::Q8C_LZ4, Coding::Q4_LZ4, Coding::Q4C_LZ4];
    let table = coding_accuracy(&net, &test, &pools, &codings, images)?;
    let Some(first) = table.first() else {
        return Ok(());
    };
    println!(
        "{}: uncoded {:.2} % on the first {} test images; accuracy with each coding (change in points)",
        member.name,
        first.lossless_accuracy * 100.0,
        first.images
    );
    print!("{:<8}", "point");
    for c in &codings {
        print!(" {:>17}", c.to_string());
    }
    println!();
    for row in table.chunks(codings.len()) {
        print!("{:<8}", row[0].point_name);
        for r in row {
            print!(
                " {:>17}",
                format!("{:.2} ({:+.2})", r.accuracy * 100.0, (r.accuracy - r.lossless_accuracy) * 100.0)
            );
        }
        println!();
    }
    Ok(())
}
