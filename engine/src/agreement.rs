//! How closely two engines agree on the same images: argmax agreement and the largest logit
//! difference, with every disagreeing image named. Pure; `tandem eval --compare-engine` feeds it
//! burn's and ONNX Runtime's logits.

use tandem_models::train::argmax;

/// The largest |Δlogit| the engines may differ by (f32 kernels summing in another order).
pub const MAX_LOGIT_DELTA: f32 = 1e-3;

/// One image the two engines classify differently.
#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    /// Index of the image in the compared sequence.
    pub image: usize,
    /// The reference engine's logits.
    pub want: Vec<f32>,
    /// The other engine's logits.
    pub got: Vec<f32>,
}

/// Running comparison over batches.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    /// Images compared.
    pub images: usize,
    /// Images with the same argmax.
    pub agreeing: usize,
    /// Largest |want − got| over every logit.
    pub max_delta: f32,
    /// The image with that largest difference.
    pub max_delta_image: usize,
    /// Every image whose argmax differs.
    pub disagreements: Vec<Disagreement>,
}

impl Agreement {
    /// Add a batch: `want` and `got` hold `classes` logits per image, in the same order.
    /// Batches of different lengths (or a non-finite logit) count every image of the batch as
    /// disagreeing rather than hiding it.
    pub fn add(&mut self, want: &[f32], got: &[f32], classes: usize) {
        let classes = classes.max(1);
        let n = want.len() / classes;
        if want.len() != got.len() || !want.len().is_multiple_of(classes) {
            for i in 0..n {
                let w = want[i * classes..(i + 1) * classes].to_vec();
                self.disagreements.push(Disagreement { image: self.images + i, want: w, got: Vec::new() });
            }
            self.images += n;
            self.max_delta = f32::INFINITY;
            return;
        }
        for (i, (w, g)) in want.chunks_exact(classes).zip(got.chunks_exact(classes)).enumerate() {
            let image = self.images + i;
            let delta = w
                .iter()
                .zip(g)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0_f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
            if delta > self.max_delta || (delta.is_infinite() && !self.max_delta.is_infinite()) {
                self.max_delta = delta;
                self.max_delta_image = image;
            }
            if argmax(w) == argmax(g) && delta.is_finite() {
                self.agreeing += 1;
            } else {
                self.disagreements.push(Disagreement { image, want: w.to_vec(), got: g.to_vec() });
            }
        }
        self.images += n;
    }

    /// Whether every image agrees and no logit differs by more than [`MAX_LOGIT_DELTA`].
    pub fn holds(&self) -> bool {
        self.agreeing == self.images && self.max_delta <= MAX_LOGIT_DELTA
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_counts_names_and_bounds() {
        let mut a = Agreement::default();
        a.add(&[1.0, 2.0, 0.0, 5.0, 4.0, 0.0], &[1.0, 2.0005, 0.0, 5.0, 4.0, 0.0], 3);
        assert_eq!((a.images, a.agreeing), (2, 2));
        assert!((a.max_delta - 0.0005).abs() < 1e-6 && a.max_delta_image == 0, "{a:?}");
        assert!(a.holds());
        // Second batch: image 2 flips its class.
        a.add(&[0.0, 1.0, 0.9], &[0.0, 0.8, 0.9], 3);
        assert_eq!((a.images, a.agreeing), (3, 2));
        assert_eq!(a.disagreements.len(), 1);
        assert_eq!(a.disagreements[0].image, 2);
        assert_eq!(a.disagreements[0].got, vec![0.0, 0.8, 0.9]);
        assert!(!a.holds());
        // A small delta alone also fails the bound.
        let mut b = Agreement::default();
        b.add(&[1.0, 0.0], &[1.0, 0.01], 2);
        assert_eq!(b.agreeing, 1);
        assert!(!b.holds(), "{b:?}");
    }

    #[test]
    fn mismatched_or_non_finite_batches_never_pass() {
        let mut a = Agreement::default();
        a.add(&[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0], 2);
        assert_eq!((a.images, a.agreeing, a.disagreements.len()), (2, 0, 2));
        assert!(!a.holds());
        let mut b = Agreement::default();
        b.add(&[1.0, 0.0], &[f32::NAN, 0.0], 2);
        assert!(!b.holds(), "{b:?}");
        assert_eq!(b.disagreements.len(), 1);
    }
}
