//! `video:` and `v4l2:` sources: an ffmpeg child process decodes and converts, this reads.
//!
//! ffmpeg is the decoder because it opens everything a user points a camera pipeline at (files
//! of any container and codec, RTSP, HTTP, V4L2) and scales on the way; GStreamer bindings
//! would do the same with a larger native build. The child writes rawvideo — `gray` or `rgb24`,
//! already `size × size` (`scale` + `crop` or `pad`, [`super::Fit`]) — on its stdout; we read
//! whole frames (`channels × size × size` bytes; a short last read is a truncated stream). The
//! interleaved rgb24 bytes are made planar (CHW) here.
//!
//! # Timestamps
//! Before decoding, `ffprobe -of json` reports the stream's frame rate and start time (typed
//! JSON, parsed with serde; nothing human-readable is read). ffmpeg is told to write a
//! constant-rate stream at that rate (`-fps_mode cfr -r RATE`: it duplicates or drops frames of
//! a variable-rate input to keep the grid), so frame `i` has pts `start + i / rate` exactly.
//! (Alternatives: parsing `-vf showinfo` from stderr is reading human text; a container such as
//! NUT on the pipe would carry pts per frame but needs a demuxer on our side.) A live source
//! (RTSP, V4L2) is asked for at most the camera's rate, so ffmpeg drops what the camera would
//! not take.
//!
//! # Errors
//! ffmpeg runs at `-v error`; its stderr is kept (the last 2 KiB) and quoted in errors. A
//! missing binary is [`SourceError::FfmpegMissing`], naming the Debian package. A file that
//! ffprobe cannot open (missing, not a video) fails at open. A file that ends early — ffmpeg
//! exits non-zero, or delivers fewer frames than the container's duration × rate promised, or a
//! partial frame — is an error at its end, after the frames it did deliver.
//!
//! The child is a `tokio::process` child with `kill_on_drop`: dropping the source (the camera
//! stopping, a shutdown) kills it.

use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;
use tandem_models::checkpoint::InputSpec;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::{Fit, RawFrame, SourceError, SourceOptions, SourceSpec};

/// Bytes of ffmpeg's stderr kept for error messages.
const STDERR_TAIL: usize = 2048;

/// What ffprobe says about the first video stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamInfo {
    /// Frames per second (`avg_frame_rate`, else `r_frame_rate`), when known.
    pub fps: Option<f64>,
    /// Start time of the stream, seconds (0 when unknown).
    pub start: f64,
    /// Container duration, seconds, when known.
    pub duration: Option<f64>,
    /// Frame width and height.
    pub size: Option<(u32, u32)>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    start_time: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

/// `"30000/1001"` → 29.97; `"0/0"` → None.
fn rate(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
    let r = n / d;
    (r.is_finite() && r > 0.0).then_some(r)
}

impl StreamInfo {
    /// From `ffprobe -of json -show_entries stream=…:format=duration` output; `None` when it
    /// lists no video stream.
    pub fn from_ffprobe_json(json: &[u8]) -> Result<Option<StreamInfo>, serde_json::Error> {
        let p: Probe = serde_json::from_slice(json)?;
        let Some(s) = p.streams.into_iter().next() else { return Ok(None) };
        let fps = s.avg_frame_rate.as_deref().and_then(rate).or_else(|| s.r_frame_rate.as_deref().and_then(rate));
        let num = |v: Option<String>| v.and_then(|t| t.parse::<f64>().ok()).filter(|x| x.is_finite());
        Ok(Some(StreamInfo {
            fps,
            start: num(s.start_time).unwrap_or(0.0),
            duration: num(p.format.and_then(|f| f.duration)).filter(|d| *d > 0.0),
            size: s.width.zip(s.height),
        }))
    }

    /// Frames a file of this duration and rate holds (rounded down), when both are known.
    pub fn expected_frames(&self) -> Option<u64> {
        Some((self.duration? * self.fps?).floor() as u64)
    }
}

/// The ffmpeg filter that fits any frame to `size × size`.
pub fn filter(size: usize, fit: Fit) -> String {
    match fit {
        Fit::Crop => format!("scale={size}:{size}:force_original_aspect_ratio=increase,crop={size}:{size}"),
        Fit::Letterbox => {
            format!("scale={size}:{size}:force_original_aspect_ratio=decrease,pad={size}:{size}:(ow-iw)/2:(oh-ih)/2")
        }
    }
}

fn spawn_error(program: &Path, error: std::io::Error) -> SourceError {
    if error.kind() == std::io::ErrorKind::NotFound {
        SourceError::FfmpegMissing { program: program.to_path_buf(), error }
    } else {
        SourceError::Io { path: program.to_path_buf(), error }
    }
}

/// `ffprobe` the first video stream of `input`.
pub async fn probe(ffprobe: &Path, input: &str) -> Result<StreamInfo, SourceError> {
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-select_streams", "v:0", "-of", "json", "-show_entries"])
        .arg("stream=width,height,avg_frame_rate,r_frame_rate,start_time:format=duration")
        .arg(input)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| spawn_error(ffprobe, e))?;
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Err(SourceError::Video { input: input.into(), why: format!("ffprobe failed ({}): {why}", out.status) });
    }
    StreamInfo::from_ffprobe_json(&out.stdout)
        .map_err(|e| SourceError::Video { input: input.into(), why: format!("ffprobe's JSON: {e}") })?
        .ok_or_else(|| SourceError::Video { input: input.into(), why: "no video stream".into() })
}

/// Frames decoded by an ffmpeg child.
#[derive(Debug)]
pub struct VideoFrames {
    input: String,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<String>>,
    info: StreamInfo,
    /// The rate of ffmpeg's output grid (pts step).
    grid_fps: Option<f64>,
    channels: usize,
    size: usize,
    delivered: u64,
    check_length: bool,
    done: bool,
}

impl VideoFrames {
    pub(super) async fn open(
        spec: &SourceSpec,
        opts: &SourceOptions,
        input_spec: &InputSpec,
    ) -> Result<VideoFrames, SourceError> {
        let live = spec.is_live();
        let (input, v4l2) = match spec {
            SourceSpec::Video { input } => (input.clone(), false),
            SourceSpec::V4l2 { device } => (device.display().to_string(), true),
            other => {
                return Err(SourceError::Video { input: other.to_string(), why: "not a video source".into() });
            }
        };
        // A webcam is opened once, by ffmpeg (probing would open it twice).
        let info = if v4l2 { StreamInfo::default() } else { probe(&opts.ffprobe, &input).await? };
        // A live stream is thinned to the camera's rate when that is lower (never padded with
        // duplicates when higher); a file keeps its own rate (the camera paces it).
        let grid_fps = match (live, opts.fps, info.fps) {
            (true, Some(cam), Some(own)) => Some(cam.min(own)),
            (true, cam, own) => cam.or(own),
            (false, _, own) => own,
        };
        let mut cmd = Command::new(&opts.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
        if opts.looped && !live {
            cmd.args(["-stream_loop", "-1"]);
        }
        if input.starts_with("rtsp://") || input.starts_with("rtsps://") {
            cmd.args(["-rtsp_transport", "tcp"]);
        }
        if v4l2 {
            cmd.args(["-f", "v4l2"]);
        }
        cmd.arg("-i").arg(&input);
        cmd.args(["-map", "0:v:0", "-an", "-sn", "-vf", &filter(input_spec.size, opts.fit)]);
        if let Some(r) = grid_fps {
            cmd.args(["-fps_mode", "cfr", "-r", &format!("{r}")]);
        }
        let pix_fmt = if input_spec.channels == 1 { "gray" } else { "rgb24" };
        cmd.args(["-pix_fmt", pix_fmt, "-f", "rawvideo", "pipe:1"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| spawn_error(&opts.ffmpeg, e))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(SourceError::Video { input, why: "ffmpeg's pipes are missing".into() });
        };
        Ok(VideoFrames {
            input,
            child,
            stdout,
            stderr: Some(tokio::spawn(tail(stderr))),
            info,
            grid_fps,
            channels: input_spec.channels,
            size: input_spec.size,
            delivered: 0,
            check_length: !live && !opts.looped,
            done: false,
        })
    }

    /// The stream's own frame rate (ffprobe's), when known.
    pub fn native_fps(&self) -> Option<f64> {
        self.info.fps
    }

    /// What ffprobe reported.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    pub(super) async fn next(&mut self) -> Result<Option<RawFrame>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let len = self.channels * self.size * self.size;
        let mut buf = vec![0u8; len];
        let got = read_full(&mut self.stdout, &mut buf).await.map_err(|e| SourceError::Video {
            input: self.input.clone(),
            why: format!("reading ffmpeg's output: {e}"),
        })?;
        if got == len {
            let pts = self.grid_fps.map(|r| self.info.start + self.delivered as f64 / r);
            self.delivered += 1;
            let pixels = if self.channels == 3 { planar(&buf, self.size * self.size) } else { buf };
            return Ok(Some(RawFrame { pixels, pts, label: None }));
        }
        self.done = true;
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| SourceError::Video { input: self.input.clone(), why: format!("waiting for ffmpeg: {e}") })?;
        let stderr = match self.stderr.take() {
            Some(h) => h.await.unwrap_or_default(),
            None => String::new(),
        };
        let said = if stderr.is_empty() { String::new() } else { format!(": ffmpeg says: {stderr}") };
        let fail = |why: String| Err(SourceError::Video { input: self.input.clone(), why });
        if !status.success() {
            return fail(format!("ffmpeg failed ({status}) after {} frames{said}", self.delivered));
        }
        if got > 0 {
            return fail(format!("stream ended inside frame {} ({got} of {len} bytes){said}", self.delivered));
        }
        if let Some(expected) = self.info.expected_frames().filter(|_| self.check_length) {
            // One frame of slack for a duration that is not a whole number of frames.
            if self.delivered + 1 < expected {
                return fail(format!(
                    "ended after {} of the {expected} frames its duration promises (truncated?){said}",
                    self.delivered
                ));
            }
        }
        if self.delivered == 0 {
            return fail(format!("no frame decoded{said}"));
        }
        Ok(None)
    }
}

/// Read until `buf` is full or the stream ends; how many bytes were read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

/// Interleaved RGB → planar CHW.
fn planar(hwc: &[u8], plane: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * plane];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px[c];
        }
    }
    out
}

/// The last [`STDERR_TAIL`] bytes of a stream, as text (one line per ffmpeg message).
async fn tail<R: AsyncRead + Unpin>(mut r: R) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&kept).trim().replace('\n', " | ")
}

/// Encode `frames` (grey or RGB CHW bytes of `channels × size × size`) as a lossless video
/// (FFV1 in Matroska) at `fps` with ffmpeg: what the demo plays through the video source.
pub fn encode_lossless(
    ffmpeg: &Path,
    pixels: &[u8],
    channels: usize,
    size: usize,
    fps: f64,
    out: &Path,
) -> Result<(), SourceError> {
    use std::io::Write as _;
    let (fmt, data) = match channels {
        1 => ("gray", pixels.to_vec()),
        3 => {
            // Planar CHW → interleaved rgb24, frame by frame.
            let plane = size * size;
            let mut hwc = Vec::with_capacity(pixels.len());
            for frame in pixels.chunks_exact(3 * plane) {
                for i in 0..plane {
                    hwc.extend([frame[i], frame[plane + i], frame[2 * plane + i]]);
                }
            }
            ("rgb24", hwc)
        }
        c => {
            return Err(SourceError::Format {
                source_uri: out.display().to_string(),
                got: format!("{c}-channel frames"),
                want: "grey or RGB".into(),
            });
        }
    };
    let enc_pix = if channels == 1 { "gray" } else { "gbrp" };
    let mut child = std::process::Command::new(ffmpeg)
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", fmt, "-s", &format!("{size}x{size}")])
        .args(["-r", &format!("{fps}"), "-i", "pipe:0", "-c:v", "ffv1", "-pix_fmt", enc_pix])
        .arg(out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(ffmpeg, e))?;
    let video = |why: String| SourceError::Video { input: out.display().to_string(), why };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&data).map_err(|e| video(format!("writing frames to ffmpeg: {e}")))?;
    }
    let done = child.wait_with_output().map_err(|e| video(format!("waiting for ffmpeg: {e}")))?;
    if !done.status.success() {
        return Err(video(format!(
            "ffmpeg failed ({}): {}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffprobe_json_gives_rate_start_and_duration() {
        let json = br#"{"programs":[],"streams":[{"width":1920,"height":1080,"r_frame_rate":"30000/1001",
            "avg_frame_rate":"0/0","start_time":"0.033"}],"format":{"duration":"10.000000"}}"#;
        let info = StreamInfo::from_ffprobe_json(json).unwrap().unwrap();
        assert!((info.fps.unwrap() - 29.97).abs() < 0.01, "{info:?}");
        assert_eq!(info.start, 0.033);
        assert_eq!(info.size, Some((1920, 1080)));
        assert_eq!(info.expected_frames(), Some(299));
        assert_eq!(StreamInfo::from_ffprobe_json(br#"{"streams":[]}"#).unwrap(), None);
        assert!(StreamInfo::from_ffprobe_json(b"not json").is_err());
    }

    /// RGB through ffmpeg both ways: planar frames encoded losslessly, decoded back planar.
    #[tokio::test]
    async fn rgb_frames_round_trip_through_ffmpeg_losslessly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rgb.mkv");
        let (size, n) = (4usize, 3usize);
        let pixels: Vec<u8> = (0..n * 3 * size * size).map(|i| (i * 7 % 256) as u8).collect();
        encode_lossless(Path::new("ffmpeg"), &pixels, 3, size, 10.0, &path).expect("ffmpeg (apt-get install ffmpeg)");
        let input = InputSpec { channels: 3, size, mean: vec![0.5; 3], std: vec![0.5; 3], classes: vec![] };
        let spec = SourceSpec::Video { input: path.display().to_string() };
        let mut v = VideoFrames::open(&spec, &SourceOptions::default(), &input).await.expect("open");
        assert_eq!(v.native_fps(), Some(10.0));
        let mut got = Vec::new();
        let mut pts = Vec::new();
        while let Some(f) = v.next().await.expect("decode") {
            pts.push(f.pts);
            got.extend(f.pixels);
        }
        assert_eq!(got, pixels);
        assert_eq!(pts, vec![Some(0.0), Some(0.1), Some(0.2)]);
    }

    #[test]
    fn filters_crop_or_pad_to_the_square_input() {
        assert_eq!(filter(32, Fit::Crop), "scale=32:32:force_original_aspect_ratio=increase,crop=32:32");
        assert!(filter(32, Fit::Letterbox).contains("pad=32:32"));
        assert_eq!(planar(&[1, 2, 3, 4, 5, 6], 2), vec![1, 4, 2, 5, 3, 6]);
    }
}
