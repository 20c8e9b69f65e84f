//! The model zoo: CIFAR-style VGG-16-BN and AlexNet built from a runtime list of conv widths.
//!
//! [`NetSpec`] is the architecture as data — layer layout, widths, input and classes — and
//! answers every static question (partition points, tensor shapes, MACs, parameters) without a
//! backend. [`Net`] is the burn module built from it. Pruning changes widths, so everything
//! downstream (surgery, series manifest, profiles) speaks in `NetSpec`s.
//!
//! Partition points are numbered `0 = input` (offload everything), `k = after unit k` (each conv
//! block and each pool), `units + 1 = end` (all local). For VGG-16 that is 18 inner points.

mod net;

pub use net::{ConvBlock, Net, Tap};

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// Architecture family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// VGG-16 with batch norm, CIFAR layout: 13 conv3×3, 5 max-pools, one linear classifier.
    Vgg16,
    /// AlexNet, CIFAR variant: 5 convs (11×11/4, 5×5, 3×3×3), 3 max-pools, one linear
    /// classifier; with batch norm after each conv so that it prunes like VGG.
    Alexnet,
}

impl std::str::FromStr for Arch {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vgg16" | "vgg-16" => Ok(Self::Vgg16),
            "alexnet" => Ok(Self::Alexnet),
            other => Err(ModelError::BadSpec(format!("unknown architecture {other:?} (expected vgg16 or alexnet)"))),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Vgg16 => "vgg16",
            Self::Alexnet => "alexnet",
        })
    }
}

/// One layer unit of the feature extractor; a partition point follows each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// conv → batch norm → ReLU; `conv` indexes the width list.
    Conv {
        /// Index of this conv among the network's convs.
        conv: usize,
        /// Square kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        pad: usize,
    },
    /// Max-pool with a square window.
    Pool {
        /// Window.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
}

const VGG16_LAYOUT: &[Option<usize>] = &[
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
    Some(512),
    Some(512),
    Some(512),
    None,
];

impl Arch {
    /// The full-width conv widths of the architecture.
    pub fn base_widths(self) -> Vec<usize> {
        match self {
            Arch::Vgg16 => VGG16_LAYOUT.iter().flatten().copied().collect(),
            Arch::Alexnet => vec![64, 192, 384, 256, 256],
        }
    }

    fn units(self) -> Vec<Unit> {
        match self {
            Arch::Vgg16 => {
                let mut conv = 0;
                VGG16_LAYOUT
                    .iter()
                    .map(|l| match l {
                        Some(_) => {
                            conv += 1;
                            Unit::Conv { conv: conv - 1, kernel: 3, stride: 1, pad: 1 }
                        }
                        None => Unit::Pool { kernel: 2, stride: 2 },
                    })
                    .collect()
            }
            Arch::Alexnet => vec![
                Unit::Conv { conv: 0, kernel: 11, stride: 4, pad: 5 },
                Unit::Pool { kernel: 2, stride: 2 },
                Unit::Conv { conv: 1, kernel: 5, stride: 1, pad: 2 },
                Unit::Pool { kernel: 2, stride: 2 },
                Unit::Conv { conv: 2, kernel: 3, stride: 1, pad: 1 },
                Unit::Conv { conv: 3, kernel: 3, stride: 1, pad: 1 },
                Unit::Conv { conv: 4, kernel: 3, stride: 1, pad: 1 },
                Unit::Pool { kernel: 2, stride: 2 },
            ],
        }
    }

    fn unit_names(self) -> Vec<String> {
        let mut names = Vec::new();
        let (mut block, mut within, mut pools) = (1, 0, 0);
        for u in self.units() {
            match (self, u) {
                (Arch::Vgg16, Unit::Conv { .. }) => {
                    within += 1;
                    names.push(format!("conv{block}_{within}"));
                }
                (Arch::Vgg16, Unit::Pool { .. }) => {
                    names.push(format!("pool{block}"));
                    block += 1;
                    within = 0;
                }
                (Arch::Alexnet, Unit::Conv { conv, .. }) => names.push(format!("conv{}", conv + 1)),
                (Arch::Alexnet, Unit::Pool { .. }) => {
                    pools += 1;
                    names.push(format!("pool{pools}"));
                }
            }
        }
        names
    }
}

/// Width plan for a width multiplier: `round(w · mult)`, at least 1.
pub fn scaled_widths(arch: Arch, mult: f64) -> Vec<usize> {
    arch.base_widths().iter().map(|&w| ((w as f64 * mult).round() as usize).max(1)).collect()
}

/// An architecture with concrete widths, input and classes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Architecture family.
    pub arch: Arch,
    /// Input channels (1 for Fashion-MNIST, 3 for CIFAR-10).
    pub in_channels: usize,
    /// Input height and width.
    pub input_size: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Output channels of each conv, in order.
    pub widths: Vec<usize>,
}

/// A named partition point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Index: 0 = input, k = after unit k, units+1 = end.
    pub index: usize,
    /// `input`, `conv1_1`, …, `pool5`, `end`.
    pub name: String,
    /// The conv whose filters make the tensor at this point (the conv itself, or for a pool the
    /// conv before it); `None` for `input` and `end`. Step 2 prunes this conv to shrink the point.
    pub conv: Option<usize>,
    /// Shape of one example's tensor at this point (`[C, H, W]`, or `[classes]` at `end`).
    pub shape: Vec<usize>,
}

impl Point {
    /// Elements of one example's tensor at this point.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

impl NetSpec {
    /// A spec for `in_channels × input_size × input_size` inputs (`input_size` at least 32 for
    /// VGG-16's five pools and AlexNet's stride-4 stem and three pools; any size that leaves
    /// every unit a non-empty output is accepted), the classifier sized from the last feature map.
    pub fn new(
        arch: Arch,
        in_channels: usize,
        input_size: usize,
        num_classes: usize,
        widths: Vec<usize>,
    ) -> Result<Self> {
        let spec = Self { arch, in_channels, input_size, num_classes, widths };
        spec.validate()?;
        Ok(spec)
    }

    /// Check widths, input and geometry.
    pub fn validate(&self) -> Result<()> {
        let want = self.arch.base_widths().len();
        if self.widths.len() != want {
            return Err(ModelError::BadSpec(format!(
                "{} needs {want} conv widths, got {}",
                self.arch,
                self.widths.len()
            )));
        }
        if let Some(i) = self.widths.iter().position(|&w| w == 0) {
            return Err(ModelError::BadSpec(format!("conv {i} has width 0 (a layer is never emptied)")));
        }
        if self.widths.iter().any(|&w| w > 1 << 16) || self.in_channels == 0 || self.in_channels > 64 {
            return Err(ModelError::BadSpec(format!(
                "implausible widths {:?} / in_channels {}",
                self.widths, self.in_channels
            )));
        }
        if self.num_classes == 0 || self.num_classes > 1 << 16 {
            return Err(ModelError::BadSpec(format!("num_classes {} out of range", self.num_classes)));
        }
        if self.input_size == 0 || self.input_size > 1024 {
            return Err(ModelError::BadSpec(format!("input_size {} out of range", self.input_size)));
        }
        let mut hw = self.input_size;
        for u in self.units() {
            hw = match u {
                Unit::Conv { kernel, stride, pad, .. } => (hw + 2 * pad).checked_sub(kernel).map(|v| v / stride + 1),
                Unit::Pool { kernel, stride } => hw.checked_sub(kernel).map(|v| v / stride + 1),
            }
            .filter(|&v| v > 0)
            .ok_or_else(|| ModelError::BadSpec(format!("input {} too small for {}", self.input_size, self.arch)))?;
        }
        Ok(())
    }

    /// The feature-extractor units in order.
    pub fn units(&self) -> Vec<Unit> {
        self.arch.units()
    }

    /// Number of partition points including `input` and `end`.
    pub fn num_points(&self) -> usize {
        self.units().len() + 2
    }

    /// Index of the `end` point.
    pub fn end(&self) -> usize {
        self.units().len() + 1
    }

    /// Every partition point with its tensor shape.
    pub fn points(&self) -> Vec<Point> {
        let mut pts = vec![Point {
            index: 0,
            name: "input".into(),
            conv: None,
            shape: vec![self.in_channels, self.input_size, self.input_size],
        }];
        let (mut c, mut hw, mut last_conv) = (self.in_channels, self.input_size, None);
        for (i, (u, name)) in self.units().into_iter().zip(self.arch.unit_names()).enumerate() {
            match u {
                Unit::Conv { conv, kernel, stride, pad } => {
                    hw = (hw + 2 * pad - kernel) / stride + 1;
                    c = self.widths[conv];
                    last_conv = Some(conv);
                }
                Unit::Pool { kernel, stride } => hw = (hw - kernel) / stride + 1,
            }
            pts.push(Point { index: i + 1, name, conv: last_conv, shape: vec![c, hw, hw] });
        }
        pts.push(Point { index: pts.len(), name: "end".into(), conv: None, shape: vec![self.num_classes] });
        pts
    }

    /// Look a point up by name (`pool3`) or index (`7`).
    pub fn point(&self, name_or_index: &str) -> Result<Point> {
        let pts = self.points();
        let found = match name_or_index.parse::<usize>() {
            Ok(i) => pts.into_iter().nth(i),
            Err(_) => pts.into_iter().find(|p| p.name == name_or_index),
        };
        found.ok_or_else(|| ModelError::UnknownPoint(name_or_index.to_string()))
    }

    /// Features entering the classifier.
    pub fn classifier_inputs(&self) -> usize {
        let pts = self.points();
        pts[pts.len() - 2].elements()
    }

    /// Multiply-accumulates of each unit (index i = unit i) and, last, the classifier.
    pub fn unit_macs(&self) -> Vec<u64> {
        let pts = self.points();
        let mut macs: Vec<u64> = self
            .units()
            .iter()
            .enumerate()
            .map(|(i, u)| match *u {
                Unit::Conv { conv, kernel, .. } => {
                    let in_c = pts[i].shape[0] as u64;
                    let out = &pts[i + 1].shape;
                    in_c * (kernel * kernel) as u64 * self.widths[conv] as u64 * (out[1] * out[2]) as u64
                }
                Unit::Pool { .. } => 0,
            })
            .collect();
        macs.push((self.classifier_inputs() * self.num_classes) as u64);
        macs
    }

    /// MACs of one example through the whole network.
    pub fn total_macs(&self) -> u64 {
        self.unit_macs().iter().sum()
    }

    /// MACs of the segment between two points (`from ≤ to`).
    pub fn macs_between(&self, from: usize, to: usize) -> u64 {
        self.unit_macs().iter().skip(from).take(to.saturating_sub(from)).sum()
    }

    /// Trainable parameters (conv weights, BN γ/β, classifier); BN running statistics excluded.
    pub fn params(&self) -> u64 {
        let mut in_c = self.in_channels as u64;
        let mut total = 0u64;
        for u in self.units() {
            if let Unit::Conv { conv, kernel, .. } = u {
                let out = self.widths[conv] as u64;
                total += in_c * out * (kernel * kernel) as u64 + 2 * out;
                in_c = out;
            }
        }
        total + (self.classifier_inputs() * self.num_classes + self.num_classes) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg16_has_18_inner_points_named_like_the_paper() {
        let s = NetSpec::new(Arch::Vgg16, 3, 32, 10, Arch::Vgg16.base_widths()).expect("valid");
        let pts = s.points();
        assert_eq!(pts.len(), 20);
        assert_eq!(pts[0].name, "input");
        assert_eq!(pts[1].name, "conv1_1");
        assert_eq!(pts[3].name, "pool1");
        assert_eq!(pts[18].name, "pool5");
        assert_eq!(pts[19].name, "end");
        // conv1 output 64×32×32 = 65 536 values vs 3 072 input values (PAPER.md).
        assert_eq!(pts[1].elements(), 65_536);
        assert_eq!(pts[0].elements(), 3_072);
        assert_eq!(pts[3].elements(), 16_384);
        assert_eq!(pts[18].elements(), 512);
        assert_eq!(pts[3].conv, Some(1));
        assert_eq!(s.point("pool3").expect("exists").index, 10);
        assert!(s.point("pool9").is_err());
    }

    /// Hand count: Σ k²·C_in·C_out·H·W over the 13 convs + the 512×10 classifier.
    #[test]
    fn vgg16_macs_match_the_hand_count() {
        let hand = |cin0: u64| {
            let l = [
                (cin0, 64, 32),
                (64, 64, 32),
                (64, 128, 16),
                (128, 128, 16),
                (128, 256, 8),
                (256, 256, 8),
                (256, 256, 8),
                (256, 512, 4),
                (512, 512, 4),
                (512, 512, 4),
                (512, 512, 2),
                (512, 512, 2),
                (512, 512, 2),
            ];
            l.iter().map(|&(i, o, hw)| 9 * i * o * hw * hw).sum::<u64>() + 5120
        };
        let rgb = NetSpec::new(Arch::Vgg16, 3, 32, 10, Arch::Vgg16.base_widths()).expect("valid");
        assert_eq!(rgb.total_macs(), hand(3));
        assert_eq!(rgb.total_macs(), 313_201_664); // "313 M" in the paper
        let gray = NetSpec::new(Arch::Vgg16, 1, 32, 10, Arch::Vgg16.base_widths()).expect("valid");
        assert_eq!(gray.total_macs(), hand(1));
        assert_eq!(gray.total_macs(), 313_201_664 - 2 * 9 * 64 * 1024);
        assert_eq!(rgb.macs_between(0, rgb.end()), rgb.total_macs());
    }

    #[test]
    fn quarter_width_matches_the_reference_widths() {
        assert_eq!(scaled_widths(Arch::Vgg16, 0.25), vec![16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]);
    }

    #[test]
    fn alexnet_geometry() {
        let s = NetSpec::new(Arch::Alexnet, 3, 32, 10, Arch::Alexnet.base_widths()).expect("valid");
        let shapes: Vec<Vec<usize>> = s.points().into_iter().map(|p| p.shape).collect();
        assert_eq!(shapes[1], vec![64, 8, 8]);
        assert_eq!(shapes[2], vec![64, 4, 4]);
        assert_eq!(shapes[8], vec![256, 1, 1]);
        assert_eq!(s.classifier_inputs(), 256);
    }

    /// The scenes data set's 3×64×64 input: every feature map twice as wide and high as at 32,
    /// so the convs cost 4×, and the classifier takes pool5's 512×2×2.
    #[test]
    fn vgg16_and_alexnet_at_64x64x3() {
        let s = NetSpec::new(Arch::Vgg16, 3, 64, 10, Arch::Vgg16.base_widths()).expect("valid");
        let pts = s.points();
        assert_eq!(pts[0].shape, vec![3, 64, 64]);
        assert_eq!(pts[1].shape, vec![64, 64, 64]);
        assert_eq!(pts[3].shape, vec![64, 32, 32]);
        assert_eq!(s.point("pool4").expect("pool4").shape, vec![512, 4, 4]);
        assert_eq!(pts[18].shape, vec![512, 2, 2]);
        assert_eq!(s.classifier_inputs(), 2048);
        // conv1_1: k² · C_in · C_out · H · W = 9 · 3 · 64 · 64 · 64.
        assert_eq!(s.unit_macs()[0], 7_077_888);
        assert_eq!(*s.unit_macs().last().expect("classifier"), 20_480);
        let at32 = NetSpec::new(Arch::Vgg16, 3, 32, 10, Arch::Vgg16.base_widths()).expect("valid");
        assert_eq!(s.total_macs() - 20_480, 4 * (at32.total_macs() - 5_120));
        assert_eq!(s.params() - at32.params(), 3 * 512 * 10, "only the classifier grows");
        let a = NetSpec::new(Arch::Alexnet, 3, 64, 10, Arch::Alexnet.base_widths()).expect("valid");
        let shapes: Vec<Vec<usize>> = a.points().into_iter().map(|p| p.shape).collect();
        assert_eq!(shapes[1], vec![64, 16, 16]);
        assert_eq!(shapes[2], vec![64, 8, 8]);
        assert_eq!(shapes[8], vec![256, 2, 2]);
        assert_eq!(a.classifier_inputs(), 1024);
        // Too small for five pools.
        assert!(NetSpec::new(Arch::Vgg16, 3, 16, 10, Arch::Vgg16.base_widths()).is_err());
    }

    #[test]
    fn bad_specs_are_errors() {
        assert!(NetSpec::new(Arch::Vgg16, 3, 32, 10, vec![64; 12]).is_err());
        let mut w = Arch::Vgg16.base_widths();
        w[4] = 0;
        assert!(NetSpec::new(Arch::Vgg16, 3, 32, 10, w).is_err());
        let mut s = NetSpec::new(Arch::Vgg16, 1, 32, 10, Arch::Vgg16.base_widths()).expect("valid");
        s.input_size = 8;
        assert!(s.validate().is_err());
    }
}
