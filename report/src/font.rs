//! Fonts for chart text, read from the system at run time.
//!
//! plotters' `ab_glyph` text renderer has no system font lookup: fonts are registered by name from
//! bytes. We read one TrueType file — `TANDEM_FONT` if set, else DejaVu Sans or Liberation Sans
//! from the usual Debian/Fedora/Arch paths (Debian package `fonts-dejavu-core`) — and register it
//! as every family the charts use. plotters keeps its font table process-wide, so registration
//! happens once per process and the bytes are kept for its lifetime.

use std::path::PathBuf;
use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::error::{ReportError, Result};

/// Environment variable naming a `.ttf`/`.otf` file to use instead of the search list.
pub const FONT_ENV: &str = "TANDEM_FONT";

/// Files tried in order when `TANDEM_FONT` is not set.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

/// The families chart text may ask for.
const FAMILIES: &[&str] = &["sans-serif", "serif", "monospace"];

static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

fn locate() -> std::result::Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(FONT_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("{FONT_ENV}={} is not a file", p.display())) };
    }
    FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
        format!("none of {FONT_CANDIDATES:?} exists: install the Debian package fonts-dejavu-core, or set {FONT_ENV} to a .ttf file")
    })
}

fn register() -> std::result::Result<PathBuf, String> {
    let path = locate()?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Leaked once per process (guarded by the OnceLock): plotters' registry wants 'static bytes.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for family in FAMILIES {
        register_font(family, FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a usable TrueType/OpenType font", path.display()))?;
    }
    Ok(path)
}

/// Make sure chart text can be drawn; returns the font file used.
pub fn ensure_fonts() -> Result<PathBuf> {
    REGISTERED.get_or_init(register).clone().map_err(ReportError::Font)
}
