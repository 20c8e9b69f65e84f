use super::tiny;
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use tandem_models::device;
use tandem_models::zoo::{Arch, Net};

/// Head then tail equals the full model at every partition point, for both architectures.
/// Same kernels on the same data, so the split is exact (tolerance 0).
#[test]
fn head_then_tail_equals_full_at_every_point() {
    let dev = device::cpu();
    for (arch, ch) in [(Arch::Vgg16, 1), (Arch::Vgg16, 3), (Arch::Alexnet, 3)] {
        let spec = tiny(arch, ch);
        let net = Net::new(&spec, &dev).valid();
        let x = Tensor::<4>::random([2, ch, 32, 32], Distribution::Normal(0.0, 1.0), &dev);
        let full = net.forward(x.clone()).into_data().try_into_vec::<f32>().expect("f32");
        for p in spec.points() {
            let head = net.forward_range(x.clone(), 0, p.index);
            let dims = head.dims();
            if p.index < spec.end() {
                assert_eq!(&dims[1..], &p.shape[..], "{arch} point {}", p.name);
            }
            let out = net.forward_range(head, p.index, spec.end()).into_data().try_into_vec::<f32>().expect("f32");
            assert_eq!(out, full, "{arch}: split at {} differs", p.name);
        }
    }
}
