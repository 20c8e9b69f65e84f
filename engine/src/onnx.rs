//! A segment of a series member as an ONNX graph.
//!
//! The graph is written with ONNX's own protobuf schema: the prost messages of [`crate::pb`]
//! (the fields of `onnx.proto` that tandem uses), encoded by prost. Nothing is assembled by
//! hand at the byte level.
//!
//! Choices:
//! - **Batch norm is folded into the convolution** (`W' = W·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`):
//!   the exported model is an inference artifact with frozen statistics, the folded graph is
//!   what every runtime would compute after its own fusion pass anyway, and it has one node
//!   fewer per block for runtimes (and readers) that do not fuse. The cost is that the file no
//!   longer holds γ/β/μ/σ² separately, so it cannot be fine-tuned; training stays in burn.
//! - Opset 17, IR version 8: supported by ONNX Runtime ≥ 1.13 and by tract.
//! - The batch dimension is symbolic (`N`); channels and spatial sizes are fixed by the spec.
//! - A segment that ends at `end` outputs `[N, classes]` logits (the whole-model convention);
//!   one that ends inside the network outputs the activation at that point, `[N, C, H, W]`.

use prost::Message;
use tandem_models::params::ParamMap;
use tandem_models::zoo::{Net, NetSpec, Unit};

use crate::error::EngineError;
use crate::pb;

/// The ONNX opset the graphs use.
pub const OPSET: i64 = 17;
/// The ONNX IR version of the files.
pub const IR_VERSION: i64 = 8;
/// Name of the graph input.
pub const INPUT: &str = "input";
/// Name of the graph output.
pub const OUTPUT: &str = "output";

/// What an exported file says about itself in `metadata_props`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Series member name (`original`, `step2-conv3_3-k1`, …) or the model directory's name.
    pub member: String,
    /// Series member id, when the model is a member of a series.
    pub model_id: Option<u32>,
    /// Data set the model was trained on.
    pub dataset: String,
    /// Per-channel mean of pixels scaled to [0, 1]: the input is `(pixel/255 − mean) / std`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (see `mean`).
    pub std: Vec<f32>,
    /// Class names, index = logit index (empty when the data set has none).
    pub class_names: Vec<String>,
}

/// Which part of the model a file holds, for the metadata (`whole`, `head`, `tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Input to logits.
    Whole,
    /// Input to the partition point.
    Head,
    /// Partition point to logits.
    Tail,
}

impl Part {
    /// The name used on the command line and in the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Whole => "whole",
            Part::Head => "head",
            Part::Tail => "tail",
        }
    }

    /// The `from..to` point range of this part at `point` in a network whose last point is `end`.
    pub fn range(self, point: usize, end: usize) -> (usize, usize) {
        match self {
            Part::Whole => (0, end),
            Part::Head => (0, point),
            Part::Tail => (point, end),
        }
    }
}

impl std::str::FromStr for Part {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "whole" => Ok(Part::Whole),
            "head" => Ok(Part::Head),
            "tail" => Ok(Part::Tail),
            other => Err(EngineError::Graph(format!("unknown part {other:?} (expected whole, head or tail)"))),
        }
    }
}

/// The ONNX model of layers `from..to` of `net` (`from < to ≤ end`).
pub fn segment_model(net: &Net, from: usize, to: usize, meta: &Metadata) -> Result<pb::ModelProto, EngineError> {
    let spec = &net.spec;
    let end = spec.end();
    if from >= to || to > end {
        return Err(EngineError::Range { from, to, end });
    }
    let params = ParamMap::from_module(net).map_err(EngineError::Model)?;
    let points = spec.points();
    let mut b = GraphBuilder::default();
    let mut x = INPUT.to_string();
    let units = spec.units();
    for (i, unit) in units.iter().enumerate().take(to.min(units.len())).skip(from) {
        let name = &points[i + 1].name;
        x = match *unit {
            Unit::Conv { conv, kernel, stride, pad } => {
                let (w, bias) = folded_conv(net, &params, conv)?;
                let wn = b.initializer(format!("{name}.weight"), w.0, w.1);
                let bn = b.initializer(format!("{name}.bias"), bias.0, bias.1);
                let k = kernel as i64;
                let (s, p) = (stride as i64, pad as i64);
                let y = b.node(
                    "Conv",
                    name,
                    vec![x, wn, bn],
                    vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s]), ints("pads", &[p, p, p, p])],
                );
                b.node("Relu", &format!("{name}.relu"), vec![y], vec![])
            }
            Unit::Pool { kernel, stride } => {
                let (k, s) = (kernel as i64, stride as i64);
                b.node("MaxPool", name, vec![x], vec![ints("kernel_shape", &[k, k]), ints("strides", &[s, s])])
            }
        };
    }
    let out_shape = if to == end {
        let flat = b.node("Flatten", "flatten", vec![x], vec![int("axis", 1)]);
        let w = params.get("classifier.weight").map_err(EngineError::Model)?;
        let bias = params.get("classifier.bias").map_err(EngineError::Model)?;
        let wn = b.initializer("classifier.weight".into(), w.shape.clone(), w.data.clone());
        let bn = b.initializer("classifier.bias".into(), bias.shape.clone(), bias.data.clone());
        b.node("Gemm", "classifier", vec![flat, wn, bn], vec![]);
        vec![spec.num_classes]
    } else {
        points[to].shape.clone()
    };
    // The last node's output is renamed to the graph output.
    if let Some(last) = b.nodes.last_mut() {
        last.output = vec![OUTPUT.to_string()];
    }
    let graph = pb::GraphProto {
        name: format!("{}-{}-{}", meta.member, points[from].name, points[to].name),
        node: b.nodes,
        initializer: b.initializers,
        input: vec![value_info(INPUT, &points[from].shape)],
        output: vec![value_info(OUTPUT, &out_shape)],
        ..Default::default()
    };
    Ok(pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "tandem".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props: metadata_props(spec, from, to, meta),
        ..Default::default()
    })
}

/// The encoded file of [`segment_model`].
pub fn segment_bytes(net: &Net, from: usize, to: usize, meta: &Metadata) -> Result<Vec<u8>, EngineError> {
    Ok(segment_model(net, from, to, meta)?.encode_to_vec())
}

/// Read the `metadata_props` of an ONNX file as key/value pairs.
pub fn read_metadata(bytes: &[u8]) -> Result<Vec<(String, String)>, EngineError> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| EngineError::Graph(format!("not an ONNX model: {e}")))?;
    Ok(model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect())
}

fn metadata_props(spec: &NetSpec, from: usize, to: usize, meta: &Metadata) -> Vec<pb::StringStringEntryProto> {
    let points = spec.points();
    let end = spec.end();
    let part = match (from, to) {
        (0, t) if t == end => Part::Whole,
        (0, _) => Part::Head,
        _ => Part::Tail,
    };
    let point = match part {
        Part::Whole => "end".to_string(),
        Part::Head => points[to].name.clone(),
        Part::Tail => points[from].name.clone(),
    };
    let list = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let mut kv = vec![
        ("tandem.member", meta.member.clone()),
        ("tandem.arch", spec.arch.to_string()),
        ("tandem.widths", spec.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join(",")),
        ("tandem.part", part.as_str().to_string()),
        ("tandem.point", point),
        ("tandem.from", points[from].name.clone()),
        ("tandem.to", points[to].name.clone()),
        ("tandem.dataset", meta.dataset.clone()),
        (
            "tandem.input",
            format!("NCHW f32, (pixel/255 - mean) / std, {}x{}x{}", spec.in_channels, spec.input_size, spec.input_size),
        ),
        ("tandem.mean", list(&meta.mean)),
        ("tandem.std", list(&meta.std)),
        ("tandem.class_names", meta.class_names.join(",")),
        ("tandem.batch_norm", "folded into conv".to_string()),
    ];
    if let Some(id) = meta.model_id {
        kv.push(("tandem.model_id", id.to_string()));
    }
    kv.into_iter().map(|(k, v)| pb::StringStringEntryProto { key: k.into(), value: v }).collect()
}

/// Conv `conv`'s weight and bias with its batch norm folded in (eval mode: running statistics).
type Dense = (Vec<usize>, Vec<f32>);
fn folded_conv(net: &Net, params: &ParamMap, conv: usize) -> Result<(Dense, Dense), EngineError> {
    let p = |what: &str| params.get(&format!("blocks.{conv}.{what}")).map_err(EngineError::Model);
    let w = p("conv.weight")?;
    let (gamma, beta, mean, var) = (p("bn.gamma")?, p("bn.beta")?, p("bn.running_mean")?, p("bn.running_var")?);
    let eps = net.blocks.get(conv).map(|b| b.bn.epsilon).ok_or(EngineError::Graph(format!("no conv block {conv}")))?;
    let out = w.shape.first().copied().unwrap_or(0);
    let per_out = w.data.len().checked_div(out).unwrap_or(0);
    if [gamma, beta, mean, var].iter().any(|a| a.data.len() != out) {
        return Err(EngineError::Graph(format!("conv {conv}: batch norm size differs from {out} filters")));
    }
    let mut weight = w.data.clone();
    let mut bias = vec![0f32; out];
    for o in 0..out {
        // In f64: the fold is computed once, its rounding should not be the graph's error.
        let scale = f64::from(gamma.data[o]) / (f64::from(var.data[o]) + eps).sqrt();
        for v in &mut weight[o * per_out..(o + 1) * per_out] {
            *v = (f64::from(*v) * scale) as f32;
        }
        bias[o] = (f64::from(beta.data[o]) - f64::from(mean.data[o]) * scale) as f32;
    }
    Ok(((w.shape.clone(), weight), (vec![out], bias)))
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl GraphBuilder {
    fn initializer(&mut self, name: String, shape: Vec<usize>, data: Vec<f32>) -> String {
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    /// Add a node; its output is named after it.
    fn node(&mut self, op: &str, name: &str, input: Vec<String>, attribute: Vec<pb::AttributeProto>) -> String {
        let output = format!("{name}.out");
        self.nodes.push(pb::NodeProto {
            op_type: op.into(),
            name: name.into(),
            input,
            output: vec![output.clone()],
            attribute,
            ..Default::default()
        });
        output
    }
}

fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// `[N, dims…]` f32 with a symbolic batch dimension.
fn value_info(name: &str, dims: &[usize]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let mut dim = vec![Dimension { value: Some(Value::DimParam("N".into())), ..Default::default() }];
    dim.extend(dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d as i64)), ..Default::default() }));
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
