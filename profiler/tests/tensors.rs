use burn::tensor::{Tensor, TensorData};
use tandem_models::device;
use tandem_profiler::{DumpOptions, dump_tensors, load_member, read_tensor, write_tensor};

use crate::fixture::{test_images, tiny_series};

#[test]
fn dumped_tensors_are_the_model_activations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let series = tiny_series(dir.path());
    let test = test_images();
    let opts = DumpOptions { model: None, points: vec!["pool2".into(), "3".into()], images: 2 };
    let dumped = dump_tensors(dir.path(), &opts, &test, out.path()).expect("dump");
    assert_eq!(dumped.len(), 4);
    let dev = device::cpu();
    let net = load_member(&series, dir.path(), series.original().expect("original"), &dev).expect("load");
    for (k, d) in dumped.iter().enumerate() {
        let image = k / 2;
        let point = series.base.point(&d.point).expect("point");
        assert_eq!(d.shape, [&[1][..], &point.shape[..]].concat());
        let stem = d.path.file_stem().and_then(|s| s.to_str()).expect("stem");
        assert_eq!(stem, format!("original_{}_{image:03}", d.point));
        let shape_text = std::fs::read_to_string(d.path.with_extension("shape")).expect("shape file");
        assert_eq!(shape_text, format!("1 {} {} {}\n", point.shape[0], point.shape[1], point.shape[2]));
        let (data, shape) = read_tensor(&d.path).expect("read back");
        assert_eq!(shape, d.shape);
        let x = Tensor::<4>::from_data(TensorData::new(test.image_f32(image), [1, 1, 32, 32]), &dev);
        let want = net.forward_range(x, 0, point.index).into_data().try_into_vec::<f32>().expect("f32");
        assert_eq!(data, want, "{}", d.path.display());
    }
    // pool1 sorts before pool2 ("3" is pool1 in VGG-16): the files are in point order.
    assert_eq!(dumped[0].point, "pool1");
    // Default: every pool point of the original.
    let all = dump_tensors(dir.path(), &DumpOptions { images: 1, ..DumpOptions::default() }, &test, out.path())
        .expect("dump");
    assert_eq!(all.iter().map(|d| d.point.as_str()).collect::<Vec<_>>(), ["pool1", "pool2", "pool3", "pool4", "pool5"]);
    // `end` is not a tensor that is sent.
    let end = DumpOptions { points: vec!["end".into()], images: 1, ..DumpOptions::default() };
    assert!(dump_tensors(dir.path(), &end, &test, out.path()).is_err());
}

#[test]
fn tensor_files_round_trip_and_reject_inconsistent_shapes() {
    let out = tempfile::tempdir().expect("tempdir");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    let path = write_tensor(out.path(), "t", &data, &[1, 2, 3, 4]).expect("write");
    assert_eq!(std::fs::read(&path).expect("bytes").len(), 96);
    assert_eq!(read_tensor(&path).expect("read"), (data.clone(), vec![1, 2, 3, 4]));
    assert!(write_tensor(out.path(), "bad", &data, &[1, 2, 3, 5]).is_err());
    std::fs::write(out.path().join("t.shape"), "1 2 3 5\n").expect("overwrite");
    assert!(read_tensor(&path).is_err());
}
