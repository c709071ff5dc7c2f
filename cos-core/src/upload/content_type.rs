//! The `Content-Type` guessed from a file name's extension, for [`UploadOptions::guess_content_type`](super::options::UploadOptions::guess_content_type)
//! (crate::upload::UploadOptions::guess_content_type).
//!
//! A fixed table of common extensions (cos-core takes no MIME-database dependency); each value is the one
//! the `mime_guess` crate gives for that extension, so an application that uses `mime_guess` and one that
//! relies on this table store the same type. An unknown extension gives `None` (COS then stores
//! `application/octet-stream`).

use std::path::Path;

/// The table: extension (lower case, without the dot) → type, sorted by extension.
pub const EXTENSION_TYPES: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("aac", "audio/aac"),
    ("avi", "video/x-msvideo"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("bz2", "application/x-bzip2"),
    ("css", "text/css"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("eot", "application/vnd.ms-fontobject"),
    ("epub", "application/epub+zip"),
    ("flac", "audio/flac"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("ico", "image/x-icon"),
    ("ics", "text/calendar"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("m4a", "audio/m4a"),
    ("md", "text/markdown"),
    ("mjs", "application/javascript"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("mpeg", "video/mpeg"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("otf", "application/font-sfnt"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("rar", "application/x-rar-compressed"),
    ("rtf", "application/rtf"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain"),
    ("wasm", "application/wasm"),
    ("wav", "audio/wav"),
    ("weba", "audio/webm"),
    ("webm", "video/webm"),
    ("webp", "image/webp"),
    ("woff", "application/font-woff"),
    ("woff2", "font/woff2"),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("xml", "text/xml"),
    ("yaml", "text/x-yaml"),
    ("yml", "text/x-yaml"),
    ("zip", "application/zip"),
];

/// The type of a file extension (without the dot, any case), or `None` when the table lacks it.
///
/// ```
/// use cos_core::upload::content_type_for_extension;
/// assert_eq!(content_type_for_extension("JPG"), Some("image/jpeg"));
/// assert_eq!(content_type_for_extension("unknown"), None);
/// ```
pub fn content_type_for_extension(ext: &str) -> Option<&'static str> {
    if ext.is_empty() || ext.len() > 8 {
        return None;
    }
    let lower = ext.to_ascii_lowercase();
    EXTENSION_TYPES
        .binary_search_by(|(e, _)| (*e).cmp(lower.as_str()))
        .ok()
        .map(|i| EXTENSION_TYPES[i].1)
}

/// The type of a file from its name's extension (`photo.JPG` → `image/jpeg`), or `None`.
///
/// ```
/// use cos_core::upload::content_type_for_path;
/// assert_eq!(content_type_for_path("site/index.html".as_ref()), Some("text/html"));
/// assert_eq!(content_type_for_path("Makefile".as_ref()), None);
/// ```
pub fn content_type_for_path(path: &Path) -> Option<&'static str> {
    content_type_for_extension(path.extension()?.to_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lower_case() {
        for w in EXTENSION_TYPES.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (e, t) in EXTENSION_TYPES {
            assert_eq!(*e, e.to_ascii_lowercase());
            assert!(t.contains('/'), "{t}");
        }
    }

    #[test]
    fn guesses_by_extension_only() {
        assert_eq!(
            content_type_for_path(Path::new("a.b/c.PNG")),
            Some("image/png")
        );
        assert_eq!(content_type_for_path(Path::new("a.txt/noext")), None);
        assert_eq!(content_type_for_path(Path::new(".hidden")), None);
        assert_eq!(
            content_type_for_path(Path::new("x.tar.gz")),
            Some("application/gzip")
        );
    }
}
