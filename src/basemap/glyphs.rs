//! Glyphs for the basemap's labels: MapLibre asks for `/basemap/fonts/{fontstack}/{start}-{end}.pbf`,
//! 256 characters at a time, as signed distance fields in a protobuf message. They are made
//! here from the TrueType/OpenType fonts of a folder (Debian's Noto fonts by default) with
//! `pbf_font_tools` (FreeType), as Martin does, once per range and font stack, and kept in
//! memory.
//!
//! The folder is read once, at the first request: each font file is opened and catalogued
//! under its family and style as the font names them ("Noto Sans Regular"), the names a style's
//! `text-font` uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use pbf_font_tools::prost::Message;
use pbf_font_tools::{Glyphs as GlyphsMessage, freetype};

/// Debian's Noto fonts (`fonts-noto-core`).
pub const DEFAULT_FONTS_DIR: &str = "/usr/share/fonts/truetype/noto";

/// Longest font stack accepted in a request (MapLibre sends the style's `text-font`, joined
/// with commas).
const MAX_STACK_LEN: usize = 256;
/// Most fonts in one stack.
const MAX_STACK_FONTS: usize = 8;
/// Size, buffer radius and cutoff of the distance fields: MapLibre's (and fontnik's) values.
const SIZE: usize = 24;
const RADIUS: usize = 8;
const CUTOFF: f64 = 0.25;

/// Why a glyph range cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GlyphError {
    /// The range is not `{start}-{end}` with start a multiple of 256 and end = start + 255.
    #[error(
        "the range must be `START-END` with START a multiple of 256 up to 65280 and END = START + 255 \
         (e.g. 0-255), got `{0}`"
    )]
    BadRange(String),
    /// The font stack is empty, too long, or names too many fonts.
    #[error("{0}")]
    BadStack(String),
    /// None of the stack's fonts is in the folder.
    #[error("no font of `{stack}` is in {dir} (it has {known})")]
    UnknownFonts {
        /// The stack asked for.
        stack: String,
        /// The folder.
        dir: PathBuf,
        /// Some of the fonts it has.
        known: String,
    },
    /// FreeType could not render a font (a broken file), or the rendering task failed.
    #[error("cannot render glyphs of {font}: {cause}")]
    Render {
        /// The font.
        font: String,
        /// What FreeType said.
        cause: String,
    },
}

type Result<T, E = GlyphError> = std::result::Result<T, E>;

/// A font of the catalogue: its file and the face in it.
#[derive(Debug, Clone)]
struct FontFile {
    path: PathBuf,
    face: isize,
}

/// The fonts of a folder, by name, and the glyph ranges made from them so far.
///
/// A range is rendered once per font (at most `RENDERS` at a time, off the async threads) and
/// combined per stack: however many stacks a client names, the rendering work is bounded by the
/// fonts of the folder times 256 ranges.
pub struct Fonts {
    dir: PathBuf,
    catalogue: tokio::sync::OnceCell<Arc<BTreeMap<String, FontFile>>>,
    /// Each font's ranges, as rendered.
    faces: moka::future::Cache<(String, u32), Arc<pbf_font_tools::Fontstack>>,
    /// Each stack's ranges, as sent.
    ranges: moka::future::Cache<(String, u32), Arc<GlyphRange>>,
    renders: tokio::sync::Semaphore,
}

/// Fonts rendered at once (each render takes a core for about a tenth of a second).
const RENDERS: usize = 2;

/// A glyph range as MapLibre reads it.
#[derive(Debug)]
pub struct GlyphRange {
    /// The protobuf message (`glyphs.proto`).
    pub pbf: Bytes,
    /// Strong validator, a hash of the bytes.
    pub etag: String,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The first character of a `{start}-{end}` range.
pub fn parse_range(range: &str) -> Result<u32> {
    let bad = || GlyphError::BadRange(range.chars().take(40).collect());
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let (start, end): (u32, u32) = (
        start.parse().map_err(|_| bad())?,
        end.parse().map_err(|_| bad())?,
    );
    if !start.is_multiple_of(256) || start > 65_280 || end != start + 255 {
        return Err(bad());
    }
    Ok(start)
}

/// The font names of a comma-separated stack, checked for length.
pub fn parse_stack(stack: &str) -> Result<Vec<&str>> {
    if stack.len() > MAX_STACK_LEN {
        return Err(GlyphError::BadStack(format!(
            "the font stack is {} bytes long; at most {MAX_STACK_LEN}",
            stack.len()
        )));
    }
    let fonts: Vec<&str> = stack
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if fonts.is_empty() {
        return Err(GlyphError::BadStack(
            "the font stack names no font (e.g. `Noto Sans Regular`)".into(),
        ));
    }
    if fonts.len() > MAX_STACK_FONTS {
        return Err(GlyphError::BadStack(format!(
            "the font stack names {} fonts; at most {MAX_STACK_FONTS}",
            fonts.len()
        )));
    }
    Ok(fonts)
}

impl Fonts {
    /// The fonts of `dir`, read at the first request.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            catalogue: Default::default(),
            // A range of Latin glyphs is 60 to 140 KiB.
            faces: moka::future::Cache::builder()
                .weigher(|_, stack: &Arc<pbf_font_tools::Fontstack>| {
                    let bytes: usize = stack
                        .glyphs
                        .iter()
                        .map(|g| g.bitmap.as_ref().map_or(0, Vec::len) + 32)
                        .sum();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .max_capacity(64 * 1024 * 1024)
                .build(),
            ranges: moka::future::Cache::builder()
                .weigher(|_, range: &Arc<GlyphRange>| {
                    u32::try_from(range.pbf.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(32 * 1024 * 1024)
                .build(),
            renders: tokio::sync::Semaphore::new(RENDERS),
        }
    }

    /// The folder read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the fonts found (read the folder if not yet done).
    pub async fn names(&self) -> Vec<String> {
        self.catalogue().await.keys().cloned().collect()
    }

    async fn catalogue(&self) -> Arc<BTreeMap<String, FontFile>> {
        self.catalogue
            .get_or_init(|| async {
                let dir = self.dir.clone();
                let started = std::time::Instant::now();
                let catalogue = tokio::task::spawn_blocking(move || catalogue(&dir))
                    .await
                    .unwrap_or_default();
                tracing::info!(
                    dir = %self.dir.display(),
                    fonts = catalogue.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "fonts catalogued for the basemap's labels"
                );
                Arc::new(catalogue)
            })
            .await
            .clone()
    }

    /// The PBF glyph range starting at `start` of the fonts of `stack` (comma-separated): each
    /// character from the first font of the stack that has it. Fonts of the stack missing from
    /// the folder are skipped; none found is an error that names the folder.
    pub async fn range(&self, stack: &str, start: u32) -> Result<Arc<GlyphRange>> {
        let names = parse_stack(stack)?;
        let catalogue = self.catalogue().await;
        let mut fonts: Vec<(String, FontFile)> = Vec::with_capacity(names.len());
        for name in names {
            if let Some(file) = catalogue.get(name)
                && !fonts.iter().any(|(n, _)| n == name)
            {
                fonts.push((name.to_owned(), file.clone()));
            }
        }
        if fonts.is_empty() {
            let mut known: Vec<&str> = catalogue.keys().map(String::as_str).take(6).collect();
            if catalogue.len() > known.len() {
                known.push("…");
            }
            return Err(GlyphError::UnknownFonts {
                stack: stack.chars().take(80).collect(),
                dir: self.dir.clone(),
                known: if known.is_empty() {
                    "no font".into()
                } else {
                    known.join(", ")
                },
            });
        }
        let key = fonts
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(",");
        self.ranges
            .try_get_with((key, start), async {
                let mut stacks = Vec::with_capacity(fonts.len());
                for (name, file) in &fonts {
                    stacks.push(self.face_range(name, file, start).await?);
                }
                Ok(combine(&stacks, start))
            })
            .await
            .map_err(|e: Arc<GlyphError>| shared(&e))
    }

    /// One font's range, rendered once.
    async fn face_range(
        &self,
        name: &str,
        file: &FontFile,
        start: u32,
    ) -> Result<Arc<pbf_font_tools::Fontstack>> {
        self.faces
            .try_get_with((name.to_owned(), start), async {
                let _permit = self
                    .renders
                    .acquire()
                    .await
                    .map_err(|e| GlyphError::Render {
                        font: name.to_owned(),
                        cause: e.to_string(),
                    })?;
                let (name, file) = (name.to_owned(), file.clone());
                let font = name.clone();
                tokio::task::spawn_blocking(move || render(&name, &file, start))
                    .await
                    .map_err(|e| GlyphError::Render {
                        font,
                        cause: e.to_string(),
                    })?
            })
            .await
            .map_err(|e: Arc<GlyphError>| shared(&e))
    }
}

/// The same error for another caller, from the copy a cache handed out.
fn shared(error: &GlyphError) -> GlyphError {
    match error {
        GlyphError::Render { font, cause } => GlyphError::Render {
            font: font.clone(),
            cause: cause.clone(),
        },
        other => GlyphError::Render {
            font: "the stack".into(),
            cause: other.to_string(),
        },
    }
}

/// Renders `start..=start+255` of one font.
fn render(name: &str, file: &FontFile, start: u32) -> Result<Arc<pbf_font_tools::Fontstack>> {
    let render_error = |cause: String| GlyphError::Render {
        font: name.to_owned(),
        cause,
    };
    let library = freetype::Library::init().map_err(|e| render_error(e.to_string()))?;
    let face = library
        .new_face(&file.path, file.face)
        .map_err(|e| render_error(e.to_string()))?;
    let mut stack =
        pbf_font_tools::glyph_range_for_face(&face, start, start + 255, SIZE, RADIUS, CUTOFF)
            .map_err(|e| render_error(e.to_string()))?;
    stack.name = name.to_owned();
    Ok(Arc::new(stack))
}

/// The stack's range: each character from the first font that has it.
fn combine(stacks: &[Arc<pbf_font_tools::Fontstack>], start: u32) -> Arc<GlyphRange> {
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    let messages = stacks
        .iter()
        .map(|s| GlyphsMessage {
            stacks: vec![(**s).clone()],
        })
        .collect();
    // A range none of the fonts covers is an empty stack, which MapLibre reads as "no glyphs".
    let combined = pbf_font_tools::combine_glyphs(messages).unwrap_or_else(|| GlyphsMessage {
        stacks: vec![pbf_font_tools::Fontstack {
            name: names.join(", "),
            range: format!("{start}-{}", start + 255),
            glyphs: Vec::new(),
        }],
    });
    let pbf = Bytes::from(combined.encode_to_vec());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&pbf);
    let etag = digest[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Arc::new(GlyphRange {
        pbf,
        etag: format!("\"{etag}\""),
    })
}

/// Every font of `dir` and its sub-folders (three levels), by "Family Style".
fn catalogue(dir: &Path) -> BTreeMap<String, FontFile> {
    let mut fonts = BTreeMap::new();
    let Ok(library) = freetype::Library::init() else {
        return fonts;
    };
    let mut folders = vec![(dir.to_owned(), 0)];
    while let Some((folder, depth)) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if depth < 3 {
                    folders.push((path, depth + 1));
                }
                continue;
            }
            let font = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "ttf" | "otf" | "ttc"));
            if !font {
                continue;
            }
            let Ok(faces) = library.new_face(&path, 0).map(|f| f.num_faces().max(1)) else {
                continue;
            };
            for index in 0..faces {
                let Ok(face) = library.new_face(&path, index as isize) else {
                    continue;
                };
                let Some(family) = face.family_name() else {
                    continue;
                };
                let name = match face.style_name() {
                    Some(style) => format!("{family} {style}"),
                    None => family,
                };
                fonts.entry(name).or_insert_with(|| FontFile {
                    path: path.clone(),
                    face: index as isize,
                });
            }
        }
    }
    fonts
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{parse_range, parse_stack};

    #[test]
    fn ranges_are_blocks_of_256() {
        assert_eq!(parse_range("0-255").ok(), Some(0));
        assert_eq!(parse_range("65280-65535").ok(), Some(65_280));
        for bad in [
            "0-256",
            "1-256",
            "256-255",
            "65536-65791",
            "a-b",
            "0",
            "-255",
            "",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stacks_name_one_to_eight_fonts() {
        assert_eq!(
            parse_stack("Noto Sans Regular, Noto Sans Bold").ok(),
            Some(vec!["Noto Sans Regular", "Noto Sans Bold"])
        );
        assert!(parse_stack(" , ").is_err());
        assert!(parse_stack(&"a,".repeat(9)).is_err());
        assert!(parse_stack(&"a".repeat(300)).is_err());
    }

    proptest! {
        /// Any range text is a block start or a clear refusal that quotes it.
        #[test]
        fn any_range_is_a_block_or_refused(range in ".{0,20}") {
            match parse_range(&range) {
                Ok(start) => prop_assert_eq!(format!("{start}-{}", start + 255), range),
                Err(e) => prop_assert!(e.to_string().contains("must be `START-END`")),
            }
        }
    }
}
