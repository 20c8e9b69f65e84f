//! Frame sources: where the camera's frames come from, one URI scheme for all of them.
//!
//! | URI | frames | labels | ends |
//! |---|---|---|---|
//! | `fashion-mnist[:test\|:train]`, `cifar10[:test\|:train]`, `synthetic` | a data set, in order | yes | loops (today's camera) |
//! | `scenes[:test\|:train]` | camera-like frames generated from Fashion-MNIST at the model's size (default seed, first 10 000) | yes | loops |
//! | `images:DIR` | PNG/JPEG/BMP files of DIR in name order (`image` crate) | no | at the last file, or loops |
//! | `video:PATH_OR_URL` | anything ffmpeg opens: mp4/mkv/avi files, `rtsp://`, `http://` | no | at the end of a file, or loops |
//! | `v4l2:/dev/videoN` | a webcam, through ffmpeg's v4l2 input | no | never (live) |
//!
//! Every source delivers frames already converted to the model's input ([`InputSpec`]: grey or
//! RGB, `size × size`, CHW bytes); the camera then normalises them with the card's mean/std.
//! Video is decoded by an ffmpeg child process writing rawvideo (`gray` or `rgb24`) at the
//! model's size on its stdout (ffmpeg scales: centre-crop or letterbox, [`Fit`]); the child is
//! killed when the source is dropped ([`video`]). A source that does not fit the model (a data
//! set of another shape, a model input ffmpeg cannot produce) is refused when it is opened, with
//! both formats named.

mod dataset;
mod images;
pub mod video;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tandem_models::checkpoint::InputSpec;

pub use dataset::DatasetFrames;
pub use images::ImageFrames;
pub use video::VideoFrames;

/// A data set split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The test split (the default).
    Test,
    /// The training split.
    Train,
}

/// The data sets a source can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSet {
    /// Fashion-MNIST (Debian's `dataset-fashion-mnist`, or `camera.data_dir`).
    FashionMnist,
    /// CIFAR-10 binary batches in `camera.data_dir`.
    Cifar10,
    /// Deterministic synthetic images (no files needed).
    Synthetic,
    /// Camera-like frames generated from Fashion-MNIST (`tandem_models::data::scenes`).
    Scenes,
}

/// Where frames come from: the parsed `--source` / `camera.source` URI (see the module docs).
/// Displays as the URI it parses from, and (de)serialises as that string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// A labelled data set.
    Dataset {
        /// Which.
        set: DataSet,
        /// Which split.
        split: Split,
    },
    /// Image files in a directory.
    Images {
        /// The directory.
        dir: PathBuf,
    },
    /// Anything ffmpeg opens as input: a file path or a URL.
    Video {
        /// Path or URL, passed to ffmpeg's `-i`.
        input: String,
    },
    /// A V4L2 capture device (webcam).
    V4l2 {
        /// `/dev/videoN`.
        device: PathBuf,
    },
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec::Dataset { set: DataSet::FashionMnist, split: Split::Test }
    }
}

/// A source URI that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad source {0:?}: expected fashion-mnist[:test|:train], cifar10[:test|:train], synthetic, scenes[:test|:train], images:DIR, video:PATH_OR_URL or v4l2:/dev/videoN"
)]
pub struct BadSource(pub String);

impl FromStr for SourceSpec {
    type Err = BadSource;
    fn from_str(s: &str) -> Result<Self, BadSource> {
        let bad = || BadSource(s.to_string());
        let (scheme, rest) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let set = match scheme {
            "fashion-mnist" | "fmnist" => Some(DataSet::FashionMnist),
            "cifar10" | "cifar-10" => Some(DataSet::Cifar10),
            "synthetic" => Some(DataSet::Synthetic),
            "scenes" => Some(DataSet::Scenes),
            _ => None,
        };
        if let Some(set) = set {
            let split = match rest {
                None | Some("test") => Split::Test,
                Some("train") => Split::Train,
                Some(_) => return Err(bad()),
            };
            return Ok(SourceSpec::Dataset { set, split });
        }
        let rest = rest.filter(|r| !r.is_empty()).ok_or_else(bad)?;
        match scheme {
            "images" => Ok(SourceSpec::Images { dir: PathBuf::from(rest) }),
            "video" => Ok(SourceSpec::Video { input: rest.to_string() }),
            "v4l2" => Ok(SourceSpec::V4l2 { device: PathBuf::from(rest) }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Dataset { set, split } => {
                let name = match set {
                    DataSet::FashionMnist => "fashion-mnist",
                    DataSet::Cifar10 => "cifar10",
                    DataSet::Synthetic => "synthetic",
                    DataSet::Scenes => "scenes",
                };
                match split {
                    Split::Test => write!(f, "{name}"),
                    Split::Train => write!(f, "{name}:train"),
                }
            }
            SourceSpec::Images { dir } => write!(f, "images:{}", dir.display()),
            SourceSpec::Video { input } => write!(f, "video:{input}"),
            SourceSpec::V4l2 { device } => write!(f, "v4l2:{}", device.display()),
        }
    }
}

impl Serialize for SourceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl SourceSpec {
    /// Whether the source is live (a camera or a network stream): it never ends by itself, and
    /// ffmpeg is asked to deliver at most the camera's rate (it drops the rest).
    pub fn is_live(&self) -> bool {
        match self {
            SourceSpec::V4l2 { .. } => true,
            SourceSpec::Video { input } => {
                ["rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://"].iter().any(|p| input.starts_with(p))
            }
            _ => false,
        }
    }
}

/// How a frame of another aspect ratio is fitted to the model's square input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Scale the short side to the input size and cut the middle (nothing is letterboxed).
    #[default]
    Crop,
    /// Scale the long side to the input size and pad with black (nothing is cut).
    Letterbox,
}

/// How sources are opened.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceOptions {
    /// Data set directory (default: the data set's own default).
    pub data_dir: Option<PathBuf>,
    /// Start again at the end (images and video files; data sets always loop).
    pub looped: bool,
    /// Crop or letterbox.
    pub fit: Fit,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The ffprobe binary.
    pub ffprobe: PathBuf,
    /// The camera's rate, when given (`--fps`); a live video source delivers at most this.
    pub fps: Option<f64>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            data_dir: None,
            looped: false,
            fit: Fit::Crop,
            ffmpeg: PathBuf::from("ffmpeg"),
            ffprobe: PathBuf::from("ffprobe"),
            fps: None,
        }
    }
}

/// One frame as a source delivers it: converted to the model's input, not yet normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct RawFrame {
    /// CHW bytes, `InputSpec::frame_len` of them.
    pub pixels: Vec<u8>,
    /// The source's presentation timestamp, seconds (video; `None` for images and data sets).
    pub pts: Option<f64>,
    /// Ground truth, when the source knows it (data sets).
    pub label: Option<u8>,
}

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The data set could not be loaded.
    #[error("source {source_uri}: {error}")]
    Data {
        /// The source.
        source_uri: String,
        /// Why.
        #[source]
        error: tandem_models::ModelError,
    },
    /// Frames of the source cannot be converted to what the model takes.
    #[error("source {source_uri} delivers {got} but the model takes {want}")]
    Format {
        /// The source.
        source_uri: String,
        /// The source's frame format.
        got: String,
        /// The model's input format.
        want: String,
    },
    /// A file or directory could not be read.
    #[error("source {}: {error}", path.display())]
    Io {
        /// What.
        path: PathBuf,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// An image file could not be decoded.
    #[error("image {}: {why}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        why: String,
    },
    /// The directory holds no PNG/JPEG/BMP file.
    #[error("images:{}: no .png, .jpg, .jpeg or .bmp file", dir.display())]
    NoImages {
        /// The directory.
        dir: PathBuf,
    },
    /// ffmpeg or ffprobe is not installed (or not at the configured path).
    #[error("{} not found ({error}): install Debian's `ffmpeg` package (`apt-get install ffmpeg`; scripts/setup.sh does)", program.display())]
    FfmpegMissing {
        /// The binary that was looked for.
        program: PathBuf,
        /// The spawn error.
        #[source]
        error: std::io::Error,
    },
    /// ffmpeg or ffprobe ran and failed: the video is missing, unreadable or corrupt.
    #[error("video {input}: {why}")]
    Video {
        /// The input.
        input: String,
        /// What went wrong (ffmpeg's own last lines included).
        why: String,
    },
}

/// An opened source.
#[derive(Debug)]
pub enum Frames {
    /// A data set.
    Dataset(DatasetFrames),
    /// Image files.
    Images(ImageFrames),
    /// ffmpeg (boxed: it holds the child, its pipes and the stream info).
    Video(Box<VideoFrames>),
}

impl Frames {
    /// Open `spec` for a model taking `input`.
    pub async fn open(spec: &SourceSpec, opts: &SourceOptions, input: &InputSpec) -> Result<Frames, SourceError> {
        check_input(spec, input)?;
        Ok(match spec {
            SourceSpec::Dataset { set, split } => {
                Frames::Dataset(DatasetFrames::open(spec, *set, *split, opts, input)?)
            }
            SourceSpec::Images { dir } => Frames::Images(ImageFrames::open(dir, opts, input)?),
            SourceSpec::Video { .. } | SourceSpec::V4l2 { .. } => {
                Frames::Video(Box::new(VideoFrames::open(spec, opts, input).await?))
            }
        })
    }

    /// The next frame; `None` at the end of a file source.
    pub async fn next(&mut self) -> Result<Option<RawFrame>, SourceError> {
        match self {
            Frames::Dataset(d) => Ok(d.next_frame()),
            Frames::Images(i) => i.next().await,
            Frames::Video(v) => v.next().await,
        }
    }

    /// The source's own frame rate, when it has one (a video stream's).
    pub fn native_fps(&self) -> Option<f64> {
        match self {
            Frames::Video(v) => v.native_fps(),
            _ => None,
        }
    }
}

/// The model's input must be one the sources can produce: grey or RGB.
fn check_input(spec: &SourceSpec, input: &InputSpec) -> Result<(), SourceError> {
    if input.channels == 1 || input.channels == 3 {
        return Ok(());
    }
    Err(SourceError::Format {
        source_uri: spec.to_string(),
        got: "grey (1 channel) or RGB (3 channels) frames".into(),
        want: format_of(input),
    })
}

/// `grey 32x32` / `RGB 32x32` / `4-channel 32x32`.
pub fn format_of(input: &InputSpec) -> String {
    let kind = match input.channels {
        1 => "grey".to_string(),
        3 => "RGB".to_string(),
        c => format!("{c}-channel"),
    };
    format!("{kind} {}x{}", input.size, input.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_display_back() {
        for s in [
            "fashion-mnist",
            "fashion-mnist:train",
            "cifar10",
            "synthetic",
            "scenes",
            "scenes:train",
            "images:/tmp/frames",
            "video:clip.mkv",
            "video:rtsp://127.0.0.1:8554/cam",
            "v4l2:/dev/video0",
        ] {
            let spec: SourceSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!("fmnist:test".parse::<SourceSpec>().unwrap(), SourceSpec::default());
        // A URL keeps its own colons.
        assert_eq!(
            "video:http://h:8080/a.mp4".parse::<SourceSpec>().unwrap(),
            SourceSpec::Video { input: "http://h:8080/a.mp4".into() }
        );
        for bad in ["webcam", "images:", "video", "fashion-mnist:val", "mp4:x"] {
            let err = bad.parse::<SourceSpec>().expect_err(bad).to_string();
            assert!(err.contains("images:DIR"), "{err}");
        }
        assert!("video:rtsp://x/y".parse::<SourceSpec>().unwrap().is_live());
        assert!("v4l2:/dev/video0".parse::<SourceSpec>().unwrap().is_live());
        assert!(!"video:a.mp4".parse::<SourceSpec>().unwrap().is_live());
    }

    #[test]
    fn a_source_in_toml_is_its_uri() {
        #[derive(Deserialize, Serialize)]
        struct W {
            source: SourceSpec,
        }
        let w: W = toml::from_str("source = \"video:a.mkv\"").unwrap();
        assert_eq!(w.source, SourceSpec::Video { input: "a.mkv".into() });
        assert_eq!(toml::to_string(&w).unwrap().trim(), "source = \"video:a.mkv\"");
        assert!(toml::from_str::<W>("source = \"nope\"").is_err());
    }
}
