use super::device_args::ComputeArgs;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use tandem_models::checkpoint;
use tandem_models::data::{self, DataSource};
use tandem_models::train::predict;

/// What `tandem eval --predictions-out` writes.
#[derive(serde::Serialize)]
struct EvalPredictions {
    /// Test accuracy over the images evaluated.
    accuracy: f64,
    /// Predicted class of each image, test-set order.
    classes: Vec<usize>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model directory (model.toml + weights.safetensors).
    #[arg(long)]
    model_dir: PathBuf,
    /// Data set to evaluate on [default: the one the model card says it was trained on].
    #[arg(long)]
    dataset: Option<DataSource>,
    /// Data directory.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate on only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Also write every image's predicted class to FILE as JSON (`{"accuracy":…,"classes":[…]}`,
    /// test-set order).
    #[arg(long, value_name = "FILE")]
    predictions_out: Option<PathBuf>,
    /// Also run the model through ONNX Runtime (the online path's engine) on the same images and
    /// compare with burn: argmax agreement, largest |Δlogit|, every disagreeing image with both
    /// logits; fails unless all agree within 1e-3.
    #[arg(long)]
    compare_engine: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model directory (model.toml + weights.safetensors).
    #[arg(long)]
    model_dir: PathBuf,
}

/// `--dataset` as given, else the data set `card` (read from `model_dir`) says the model was
/// trained on.
pub fn dataset_or_card(
    given: Option<DataSource>,
    card: &checkpoint::ModelCard,
    model_dir: &std::path::Path,
) -> anyhow::Result<DataSource> {
    let Some(d) = given else {
        return card.provenance.dataset.parse::<DataSource>().with_context(|| {
            format!(
                "{}: its card names the data set {:?}, which this build cannot load; pass --dataset",
                model_dir.display(),
                card.provenance.dataset
            )
        });
    };
    Ok(d)
}

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let dev = a.compute.device(false)?;
    let (net, card) =
        checkpoint::load(&a.model_dir, &dev).with_context(|| format!("loading {}", a.model_dir.display()))?;
    let dataset = dataset_or_card(a.dataset.clone(), &card, &a.model_dir)?;
    let test = data::load_test(&dataset, a.data.as_deref())?;
    let test = match a.limit {
        Some(n) => test.take(n),
        None => test,
    };
    anyhow::ensure!(
        test.channels == card.spec.in_channels
            && test.size == card.spec.input_size
            && test.num_classes == card.spec.num_classes,
        "model expects {}x{}x{} inputs / {} classes, data set has {}x{}x{} / {}",
        card.spec.in_channels,
        card.spec.input_size,
        card.spec.input_size,
        card.spec.num_classes,
        test.channels,
        test.size,
        test.size,
        test.num_classes
    );
    let classes = predict(&net, &test, 200);
    let correct = classes.iter().zip(&test.labels).filter(|(p, l)| **p == usize::from(**l)).count();
    let acc = correct as f64 / test.len().max(1) as f64;
    if let Some(path) = &a.predictions_out {
        let eval = EvalPredictions { accuracy: acc, classes };
        tandem_actors::report::write_json(path, &eval)?;
    }
    println!("{}: test accuracy {:.2} % on {} images", a.model_dir.display(), acc * 100.0, test.len());
    if a.compare_engine {
        compare_engine(&net, &test)?;
    }
    Ok(())
}

/// burn's eval-mode logits against ONNX Runtime's on the whole model, batch by batch.
fn compare_engine(net: &tandem_models::zoo::Net, test: &data::Dataset) -> anyhow::Result<()> {
    use burn::module::Module;
    use tandem_engine::agreement::{Agreement, MAX_LOGIT_DELTA};
    use tandem_engine::{Choice, Engine, EngineOptions};
    let engine = Engine::open(&EngineOptions { choice: Choice::OnnxRuntime, ..EngineOptions::default() })?;
    let segment = engine.prepare(net, 0, net.spec.end(), 1)?;
    let eval = net.valid();
    let mut agreement = Agreement::default();
    const BATCH: usize = 100;
    for batch in data::BatchIter::sequential(test, BATCH) {
        let want = tandem_models::train::logits(&eval, batch.images.clone(), batch.len, test);
        let shape = [batch.len, test.channels, test.size, test.size];
        let (got, _) = segment.run(batch.images, shape)?;
        agreement.add(&want, &got, test.num_classes);
    }
    println!(
        "engine {} vs burn: argmax agreement {}/{} ({:.3} %), max |Δlogit| {:.2e} (image {}), bound {MAX_LOGIT_DELTA:e}",
        engine.kind(),
        agreement.agreeing,
        agreement.images,
        100.0 * agreement.agreeing as f64 / agreement.images.max(1) as f64,
        agreement.max_delta,
        agreement.max_delta_image
    );
    for d in &agreement.disagreements {
        println!("  image {} disagrees: burn {:?} vs {} {:?}", d.image, d.want, engine.kind(), d.got);
    }
    anyhow::ensure!(agreement.holds(), "the engine does not agree with burn within {MAX_LOGIT_DELTA:e}");
    Ok(())
}

pub fn info(a: InfoArgs) -> anyhow::Result<()> {
    let card = checkpoint::read_card(&a.model_dir)?;
    let s = &card.spec;
    println!(
        "model      {} ({} in-channels, {} classes, {}x{} input)",
        s.arch, s.in_channels, s.num_classes, s.input_size, s.input_size
    );
    println!("widths     {:?}", s.widths);
    println!("params     {}", s.params());
    println!("MACs       {} ({:.2} M)", s.total_macs(), s.total_macs() as f64 / 1e6);
    if let Some(acc) = card.accuracy {
        println!("accuracy   {:.2} %", acc * 100.0);
    }
    println!(
        "produced   {} on {}, {} epochs, {:.0} s; {}",
        card.provenance.stage,
        card.provenance.dataset,
        card.provenance.epochs,
        card.provenance.wall_s,
        card.provenance.detail
    );
    println!();
    println!(
        "{:>3}  {:<8} {:>14} {:>10} {:>12} {:>12} {:>12}",
        "#", "point", "shape", "elements", "f32 bytes", "MACs before", "MACs after"
    );
    for p in s.points() {
        let shape = p.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        println!(
            "{:>3}  {:<8} {:>14} {:>10} {:>12} {:>12} {:>12}",
            p.index,
            p.name,
            shape,
            p.elements(),
            p.elements() * 4,
            s.macs_between(0, p.index),
            s.macs_between(p.index, s.end())
        );
    }
    Ok(())
}
