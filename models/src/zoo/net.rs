//! The burn module built from a [`NetSpec`]. One struct serves both architectures: a list of
//! conv blocks, the pooling layout from the spec, and a linear classifier. `forward_range` runs
//! any contiguous segment between two partition points, which is what splits a model between
//! device and edge: `forward_range(forward_range(x, 0, p), p, end) == forward(x)`.

use super::{NetSpec, Unit};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// conv → batch norm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// The convolution (no bias: batch norm follows).
    pub conv: Conv2d,
    /// Batch norm over the conv's output channels.
    pub bn: BatchNorm,
}

/// Where a [`Tap`] sees a conv block's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// The raw conv output, before batch norm (Taylor ranking hooks here, like the authors'
    /// code hooks the conv module's output).
    ConvOut,
    /// The block output, after batch norm and ReLU (what the next layer sees).
    BlockOut,
}

/// A CIFAR-style CNN with runtime widths.
#[derive(Module, Debug)]
pub struct Net {
    /// One block per conv, in order.
    pub blocks: Vec<ConvBlock>,
    /// Final linear layer over the flattened last feature map.
    pub classifier: Linear,
    /// The architecture this module was built from.
    #[module(skip)]
    pub spec: NetSpec,
}

impl Net {
    /// Build a freshly initialised network. The spec must be valid ([`NetSpec::validate`]).
    pub fn new(spec: &NetSpec, device: &Device) -> Self {
        let mut in_c = spec.in_channels;
        let mut blocks = Vec::with_capacity(spec.widths.len());
        for u in spec.units() {
            if let Unit::Conv { conv, kernel, stride, pad } = u {
                let out = spec.widths[conv];
                blocks.push(ConvBlock {
                    conv: Conv2dConfig::new([in_c, out], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                        .with_bias(false)
                        .init(device),
                    bn: BatchNormConfig::new(out).init(device),
                });
                in_c = out;
            }
        }
        let classifier = LinearConfig::new(spec.classifier_inputs(), spec.num_classes).init(device);
        Self { blocks, classifier, spec: spec.clone() }
    }

    /// The whole network: `[N, C, H, W]` images to `[N, classes]` logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_range(x, 0, self.spec.end()).flatten(1, 3)
    }

    /// Run the layers between partition points `from` and `to` (`from ≤ to`). The result is
    /// the activation at point `to`, as `[N, C, H, W]`; at `end` the logits are returned as
    /// `[N, classes, 1, 1]` so that every segment has one type.
    pub fn forward_range(&self, x: Tensor<4>, from: usize, to: usize) -> Tensor<4> {
        self.forward_tapped(x, from, to, &mut |_, _, t| t)
    }

    /// Like [`forward_range`](Self::forward_range), with `tap(conv, where, activation)` called at
    /// every conv block; its return value replaces the activation (identity, a gate, a mask).
    pub fn forward_tapped(
        &self,
        mut x: Tensor<4>,
        from: usize,
        to: usize,
        tap: &mut dyn FnMut(usize, Tap, Tensor<4>) -> Tensor<4>,
    ) -> Tensor<4> {
        let units = self.spec.units();
        let end = units.len() + 1;
        let to = to.min(end);
        for u in units.iter().take(to.min(units.len())).skip(from) {
            x = match *u {
                Unit::Conv { conv, .. } => {
                    let block = &self.blocks[conv];
                    let y = tap(conv, Tap::ConvOut, block.conv.forward(x));
                    tap(conv, Tap::BlockOut, relu(block.bn.forward(y)))
                }
                Unit::Pool { kernel, stride } => {
                    MaxPool2dConfig::new([kernel, kernel]).with_strides([stride, stride]).init().forward(x)
                }
            };
        }
        if to == end && from < end {
            let [n, _, _, _] = x.dims();
            let logits = self.classifier.forward(x.flatten::<2>(1, 3));
            x = logits.reshape([n, self.spec.num_classes, 1, 1]);
        }
        x
    }
}
