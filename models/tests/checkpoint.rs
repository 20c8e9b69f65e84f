use super::tiny;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use tandem_models::ModelError;
use tandem_models::checkpoint::{self, ModelCard, Provenance};
use tandem_models::device;
use tandem_models::params::ParamMap;
use tandem_models::zoo::{Arch, Net};

fn card(spec: tandem_models::zoo::NetSpec) -> ModelCard {
    ModelCard {
        spec,
        accuracy: Some(0.5),
        provenance: Provenance { stage: "test".into(), ..Default::default() },
        input: None,
    }
}

/// Randomise BN running statistics so the round trip proves they are saved too.
fn with_random_stats(net: Net) -> Net {
    let mut map = ParamMap::from_module(&net).expect("read");
    for (name, a) in map.0.iter_mut() {
        if name.contains("running") {
            for (i, v) in a.data.iter_mut().enumerate() {
                *v = 0.5 + (i % 7) as f32 * 0.1;
            }
        }
    }
    map.apply(net).expect("apply")
}

#[test]
fn save_then_load_is_bit_exact() {
    let dev = device::cpu();
    let spec = tiny(Arch::Vgg16, 1);
    let net = with_random_stats(Net::new(&spec, &dev));
    let dir = tempfile::tempdir().expect("tempdir");
    checkpoint::save(dir.path(), &net, &card(spec.clone())).expect("save");
    let (loaded, c) = checkpoint::load(dir.path(), &dev).expect("load");
    assert_eq!(c, card(spec));
    assert_eq!(ParamMap::from_module(&loaded).expect("read"), ParamMap::from_module(&net).expect("read"));
    let x = Tensor::<4>::random([3, 1, 32, 32], Distribution::Default, &dev);
    let a = net.valid().forward(x.clone()).into_data().try_into_vec::<f32>().expect("f32");
    let b = loaded.valid().forward(x).into_data().try_into_vec::<f32>().expect("f32");
    assert_eq!(a, b);
}

#[test]
fn running_statistics_are_part_of_the_params() {
    let net = Net::new(&tiny(Arch::Alexnet, 3), &device::cpu());
    let map = ParamMap::from_module(&net).expect("read");
    assert!(map.0.contains_key("blocks.0.bn.running_mean"), "{:?}", map.0.keys().collect::<Vec<_>>());
    assert!(map.0.contains_key("blocks.0.bn.running_var"));
    assert!(map.0.contains_key("classifier.weight"));
}

#[test]
fn a_checkpoint_with_a_tampered_shape_fails_cleanly() {
    let dev = device::cpu();
    let spec = tiny(Arch::Vgg16, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    checkpoint::save(dir.path(), &Net::new(&spec, &dev), &card(spec.clone())).expect("save");
    // model.toml now claims a wider conv 3 than the weights hold.
    let mut wider = spec.clone();
    wider.widths[3] += 2;
    let toml = toml::to_string(&card(wider)).expect("toml");
    std::fs::write(dir.path().join(checkpoint::MODEL_TOML), toml).expect("write");
    let err = checkpoint::load(dir.path(), &dev).expect_err("shape mismatch").to_string();
    assert!(err.contains("blocks.3") || err.contains("blocks.4"), "names the tensor: {err}");
}

#[test]
fn a_checkpoint_with_a_missing_tensor_fails_cleanly() {
    let dev = device::cpu();
    let spec = tiny(Arch::Alexnet, 3);
    let net = Net::new(&spec, &dev);
    // Write weights of an AlexNet but claim VGG: most tensors are missing.
    let dir = tempfile::tempdir().expect("tempdir");
    checkpoint::save(dir.path(), &net, &card(spec)).expect("save");
    std::fs::write(
        dir.path().join(checkpoint::MODEL_TOML),
        toml::to_string(&card(tiny(Arch::Vgg16, 3))).expect("toml"),
    )
    .expect("write");
    assert!(matches!(checkpoint::load(dir.path(), &dev), Err(ModelError::Checkpoint { .. })));
    // And a map missing one tensor is refused by apply.
    let mut map = ParamMap::from_module(&net).expect("read");
    map.0.remove("classifier.bias");
    let err = map.apply(Net::new(&tiny(Arch::Alexnet, 3), &dev)).expect_err("missing");
    assert!(matches!(&err, ModelError::MissingTensor(n) if n.contains("classifier.bias")), "{err}");
}

#[test]
fn garbage_files_are_errors_not_panics() {
    let dev = device::cpu();
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(checkpoint::load(dir.path(), &dev).is_err(), "no model.toml");
    std::fs::write(dir.path().join(checkpoint::MODEL_TOML), "spec = 3\n").expect("write");
    assert!(checkpoint::load(dir.path(), &dev).is_err(), "bad toml");
    std::fs::write(
        dir.path().join(checkpoint::MODEL_TOML),
        toml::to_string(&card(tiny(Arch::Vgg16, 1))).expect("toml"),
    )
    .expect("write");
    assert!(checkpoint::load(dir.path(), &dev).is_err(), "no weights");
    std::fs::write(dir.path().join(checkpoint::WEIGHTS), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").expect("write");
    assert!(checkpoint::load(dir.path(), &dev).is_err(), "garbage weights");
}
