//! The scenes data set from the real Fashion-MNIST files (Debian's dataset-fashion-mnist):
//! deterministic, train/test disjoint by construction, and learnable.

use std::sync::OnceLock;
use tandem_models::data::{self, DataSource, Dataset, ScenesConfig, Splits, scenes};
use tandem_models::device;
use tandem_models::train::{Schedule, TrainConfig, evaluate, train};
use tandem_models::zoo::{Arch, Net, NetSpec};

fn fmnist() -> &'static Splits {
    static FM: OnceLock<Splits> = OnceLock::new();
    FM.get_or_init(|| {
        data::load(&DataSource::FashionMnist, None).expect("Fashion-MNIST (dataset-fashion-mnist package)")
    })
}

/// `fmnist` cut to its first `n` items per split (generation reads only what it is given).
fn first(n: usize) -> Splits {
    let fm = fmnist();
    Splits { train: fm.train.take(n), test: fm.test.take(n), name: fm.name.clone() }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let items = first(400);
    let cfg = ScenesConfig { train: Some(100), test: Some(100), ..ScenesConfig::default() };
    let a = scenes::scenes(&items, &cfg).expect("generate");
    let b = scenes::scenes(&items, &cfg).expect("generate");
    assert_eq!(a.train.pixels, b.train.pixels);
    assert_eq!(a.test.pixels, b.test.pixels);
    assert_eq!((a.test.channels, a.test.size, a.test.len()), (3, 64, 100));
    let c = scenes::scenes(&items, &ScenesConfig { seed: 2, ..cfg }).expect("generate");
    assert_ne!(a.test.pixels, c.test.pixels);
    let differing = (0..100).filter(|&i| a.test.image(i) != c.test.image(i)).count();
    assert_eq!(differing, 100, "every frame changes with the seed");
    // The loader's name parses back to the same data set.
    assert_eq!(a.test.labels, c.test.labels, "labels are the subjects' (item i of the split)");
    assert_eq!(a.name.parse::<DataSource>().expect("name parses"), DataSource::Scenes(cfg));
}

#[test]
fn the_test_split_is_drawn_only_from_fashion_mnist_test_items() {
    let items = first(300);
    let cfg = ScenesConfig { train: Some(60), test: Some(60), size: 48, ..ScenesConfig::default() };
    let real = scenes::scenes(&items, &cfg).expect("generate");
    assert_eq!(real.test.labels, items.test.labels[..60]);
    assert_eq!(real.train.labels, items.train.labels[..60]);
    // Blank out (and relabel) the train items: the test frames do not change; and vice versa.
    let blank = |d: &Dataset| Dataset { pixels: vec![0; d.pixels.len()], labels: vec![9; d.len()], ..d.clone() };
    let no_train = Splits { train: blank(&items.train), ..items.clone() };
    let no_test = Splits { test: blank(&items.test), ..items.clone() };
    let a = scenes::scenes(&no_train, &cfg).expect("generate");
    let b = scenes::scenes(&no_test, &cfg).expect("generate");
    assert_eq!(a.test.pixels, real.test.pixels, "test frames read a train item");
    assert_ne!(a.train.pixels, real.train.pixels);
    assert_eq!(b.train.pixels, real.train.pixels, "train frames read a test item");
    assert_ne!(b.test.pixels, real.test.pixels);
}

/// A tiny VGG-16 at 3×64×64 trained for ~12 s (2 cores) on 1 280 scenes beats chance (10 %) on 300
/// test scenes.
#[test]
fn a_tiny_vgg_learns_scenes_above_chance() {
    let cfg = ScenesConfig { train: Some(1280), test: Some(300), ..ScenesConfig::default() };
    let s = scenes::scenes(&first(1000), &cfg).expect("generate");
    let widths = Arch::Vgg16.base_widths().iter().map(|&w| (w / 64).clamp(4, 8)).collect();
    let spec = NetSpec::new(Arch::Vgg16, 3, 64, 10, widths).expect("spec");
    let dev = device::cpu_autodiff();
    dev.seed(3);
    let tc = TrainConfig {
        epochs: 6.0,
        batch_size: 32,
        lr: 0.05,
        schedule: Schedule::Constant,
        augment: false,
        ..TrainConfig::default()
    };
    let (net, report) = train(Net::new(&spec, &dev), &s.train, &tc, "scenes", false).expect("train");
    assert!(report.last_loss < report.first_loss, "{report:?}");
    let acc = evaluate(&net, &s.test, 100);
    eprintln!("tiny VGG-16 on 1280 scenes, 6 epochs: test accuracy {acc:.3} ({report:?})");
    assert!(acc > 0.2, "accuracy {acc} should beat chance (0.1) clearly");
}
