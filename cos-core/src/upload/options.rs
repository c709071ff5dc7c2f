//! Options of the whole-file and stream transfers, shared by both drivers (`cos_blocking::UploadOptions` and
//! `cos_async::UploadOptions` are this type): plain data and callbacks, no I/O.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::ops::ObjectOptions;
use crate::upload::multipart::{UploadConfig, UploadOutcome, DEFAULT_MAX_IN_FLIGHT};
use crate::upload::plan::DEFAULT_SINGLE_PUT_THRESHOLD;
use crate::upload::progress::Progress;

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The default number of files a batch or a task queue uploads at once.
pub const DEFAULT_FILE_PARALLEL: usize = crate::upload::queue::DEFAULT_FILE_PARALLEL_LIMIT;

/// How a file or a stream is uploaded.
///
/// ```
/// use cos_core::upload::UploadOptions;
/// let o = UploadOptions::default().part_size(8 << 20).concurrency(4).threshold(4 << 20);
/// assert_eq!((o.part_size, o.concurrency, o.threshold), (Some(8 << 20), 4, 4 << 20));
/// assert!(o.resume_unfinished);
/// ```
#[derive(Clone)]
pub struct UploadOptions {
    /// Files up to this size are sent with a single PUT (default 1 MiB).
    pub threshold: u64,
    /// Part size; `None` picks it with `PartPlan::auto` (1 MiB, larger for files over 10,000 MiB). For
    /// streams `None` means 1 MiB, which limits a stream to 10,000 MiB.
    pub part_size: Option<u64>,
    /// Parts in flight at once (default 3).
    pub concurrency: usize,
    /// A checkpoint file (JSON, written atomically) to resume an interrupted upload from; deleted once the
    /// upload succeeds or is cancelled. Files only.
    pub checkpoint: Option<PathBuf>,
    /// Without a checkpoint: continue the newest unfinished upload of the key found on the server (List
    /// Multipart Uploads, then List Parts; parts are kept only if their MD5 matches). Default true.
    pub resume_unfinished: bool,
    /// The object's headers: content type, metadata, storage class, ACL…
    pub object: ObjectOptions,
    /// Fail rather than replace an existing object (`x-cos-forbid-overwrite`).
    pub forbid_overwrite: bool,
    /// Hash the whole file first and store its MD5 as `x-cos-meta-md5` (files only).
    pub add_meta_md5: bool,
    /// Also compute the MD5 of every body sent and check the ETags against it (default false). Integrity is
    /// checked by default with CRC-64 — each part's and the whole object's `x-cos-hash-crc64ecma` against
    /// the CRC-64 computed while sending — at about 0.08 s of CPU per GiB; MD5 adds about 1.3 s per GiB for
    /// one body at a time, about 0.8 s when parts are in flight together (their MD5s are hashed two at a
    /// time, [`crate::checksum::Md5Pool`]).
    /// Without it, an answer without a CRC-64 is an [`crate::error::IntegrityError::Unverified`] error.
    pub verify_md5: bool,
    /// Called with the bytes confirmed by COS so far (throttled).
    pub on_progress: Option<ProgressFn>,
    /// Called while `add_meta_md5` hashes the file (throttled).
    pub on_hash_progress: Option<ProgressFn>,
    /// When `object.content_type` is unset, a file's `Content-Type` is guessed from its extension with
    /// [`content_type_for_path`](crate::upload::content_type_for_path) (a table of common types with the
    /// `mime_guess` crate's values; an unknown extension sends none, and COS stores
    /// `application/octet-stream`). Files only; default true.
    pub guess_content_type: bool,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            threshold: DEFAULT_SINGLE_PUT_THRESHOLD,
            part_size: None,
            concurrency: DEFAULT_MAX_IN_FLIGHT,
            checkpoint: None,
            resume_unfinished: true,
            object: ObjectOptions::default(),
            forbid_overwrite: false,
            add_meta_md5: false,
            verify_md5: false,
            on_progress: None,
            on_hash_progress: None,
            guess_content_type: true,
        }
    }
}

impl std::fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadOptions")
            .field("threshold", &self.threshold)
            .field("part_size", &self.part_size)
            .field("concurrency", &self.concurrency)
            .field("checkpoint", &self.checkpoint)
            .field("resume_unfinished", &self.resume_unfinished)
            .field("object", &self.object)
            .field("forbid_overwrite", &self.forbid_overwrite)
            .field("add_meta_md5", &self.add_meta_md5)
            .field("verify_md5", &self.verify_md5)
            .field("on_progress", &self.on_progress.is_some())
            .field("on_hash_progress", &self.on_hash_progress.is_some())
            .field("guess_content_type", &self.guess_content_type)
            .finish()
    }
}

impl UploadOptions {
    /// Sets [`threshold`](Self::threshold).
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Sets [`concurrency`](Self::concurrency) (at least 1).
    pub fn concurrency(mut self, parts_in_flight: usize) -> Self {
        self.concurrency = parts_in_flight.max(1);
        self
    }

    /// Sets [`checkpoint`](Self::checkpoint).
    pub fn checkpoint(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(path.into());
        self
    }

    /// Sets [`resume_unfinished`](Self::resume_unfinished).
    pub fn resume_unfinished(mut self, on: bool) -> Self {
        self.resume_unfinished = on;
        self
    }

    /// Sets [`object`](Self::object).
    pub fn object(mut self, object: ObjectOptions) -> Self {
        self.object = object;
        self
    }

    /// Sets [`forbid_overwrite`](Self::forbid_overwrite).
    pub fn forbid_overwrite(mut self, on: bool) -> Self {
        self.forbid_overwrite = on;
        self
    }

    /// Sets [`verify_md5`](Self::verify_md5).
    pub fn verify_md5(mut self, on: bool) -> Self {
        self.verify_md5 = on;
        self
    }

    /// Sets [`add_meta_md5`](Self::add_meta_md5).
    pub fn add_meta_md5(mut self, on: bool) -> Self {
        self.add_meta_md5 = on;
        self
    }

    /// Sets [`on_progress`](Self::on_progress).
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Sets [`on_hash_progress`](Self::on_hash_progress).
    pub fn on_hash_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_hash_progress = Some(Arc::new(f));
        self
    }

    /// Sets [`guess_content_type`](Self::guess_content_type).
    pub fn guess_content_type(mut self, on: bool) -> Self {
        self.guess_content_type = on;
        self
    }

    /// These options for the file at `path`: with [`guess_content_type`](Self::guess_content_type) on, no
    /// content type set and a known extension, a copy with the guessed `Content-Type`; else `self`. The
    /// drivers' `upload_file` calls it.
    ///
    /// ```
    /// use cos_core::upload::UploadOptions;
    /// let o = UploadOptions::default();
    /// assert_eq!(o.for_file("a/photo.jpg".as_ref()).object.content_type.as_deref(), Some("image/jpeg"));
    /// assert_eq!(o.for_file("a/notes".as_ref()).object.content_type, None);
    /// let off = UploadOptions::default().guess_content_type(false);
    /// assert_eq!(off.for_file("a/photo.jpg".as_ref()).object.content_type, None);
    /// ```
    pub fn for_file(&self, path: &Path) -> Cow<'_, UploadOptions> {
        if !self.guess_content_type || self.object.content_type.is_some() {
            return Cow::Borrowed(self);
        }
        match crate::upload::content_type::content_type_for_path(path) {
            Some(t) => {
                let mut o = self.clone();
                o.object.content_type = Some(t.to_string());
                Cow::Owned(o)
            }
            None => Cow::Borrowed(self),
        }
    }

    /// The core task configuration these options stand for (drivers pass the chosen part size and, with
    /// `add_meta_md5`, the file's hex MD5).
    pub fn upload_config(&self, part_size: Option<u64>, meta_md5: Option<String>) -> UploadConfig {
        UploadConfig {
            part_size,
            max_in_flight: self.concurrency.max(1),
            options: self.object.clone(),
            forbid_overwrite: self.forbid_overwrite,
            verify_crc64: true,
            meta_md5,
            verify_md5: self.verify_md5,
        }
    }
}

impl BatchOptions {
    /// The options each file of the batch is uploaded with: [`BatchOptions::upload`] less its checkpoint
    /// path (one checkpoint file cannot serve several files; a batch's files resume by finding their
    /// unfinished uploads on the server). Both drivers use this, so batches decide the same way.
    pub fn file_options(&self) -> UploadOptions {
        let mut o = self.upload.clone();
        o.checkpoint = None;
        o
    }
}

/// One file of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUpload {
    /// The local file.
    pub path: PathBuf,
    /// The object key.
    pub key: String,
}

impl FileUpload {
    /// The file at `path`, uploaded as `key`.
    pub fn new(path: impl Into<PathBuf>, key: impl Into<String>) -> FileUpload {
        FileUpload {
            path: path.into(),
            key: key.into(),
        }
    }
}

/// Gives the options of one file of a batch (see [`BatchOptions::per_file`]).
pub type FileOptionsFn = Arc<dyn Fn(&FileUpload) -> UploadOptions + Send + Sync>;

/// Called when a file of a batch ends, with its result.
pub type FileDoneFn = Arc<dyn Fn(&FileUpload, &Result<UploadOutcome, Error>) + Send + Sync>;

/// How a batch is uploaded.
#[derive(Clone)]
pub struct BatchOptions {
    /// Files uploaded at once (default 3).
    pub file_parallel: usize,
    /// Options of every file.
    pub upload: UploadOptions,
    /// Called as each file ends (in completion order).
    pub on_file_done: Option<FileDoneFn>,
    /// When set, called as each file starts for that file's options (its own checkpoint, content type,
    /// progress callback…), instead of `upload`.
    pub per_file: Option<FileOptionsFn>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            file_parallel: DEFAULT_FILE_PARALLEL,
            upload: UploadOptions::default(),
            on_file_done: None,
            per_file: None,
        }
    }
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("file_parallel", &self.file_parallel)
            .field("upload", &self.upload)
            .field("on_file_done", &self.on_file_done.is_some())
            .field("per_file", &self.per_file.is_some())
            .finish()
    }
}

impl BatchOptions {
    /// Sets [`file_parallel`](Self::file_parallel) (at least 1).
    pub fn file_parallel(mut self, files: usize) -> Self {
        self.file_parallel = files.max(1);
        self
    }

    /// Sets [`upload`](Self::upload).
    pub fn upload(mut self, upload: UploadOptions) -> Self {
        self.upload = upload;
        self
    }

    /// Sets [`per_file`](Self::per_file).
    ///
    /// ```
    /// use cos_core::upload::{BatchOptions, FileUpload, UploadOptions};
    /// let b = BatchOptions::default().per_file(|f: &FileUpload| {
    ///     UploadOptions::default().checkpoint(format!("/tmp/cp/{}.json", f.key.replace('/', "_")))
    /// });
    /// let o = b.options_for(&FileUpload::new("x.bin", "a/x.bin"));
    /// assert_eq!(o.checkpoint.as_deref(), Some("/tmp/cp/a_x.bin.json".as_ref()));
    /// ```
    pub fn per_file(
        mut self,
        f: impl Fn(&FileUpload) -> UploadOptions + Send + Sync + 'static,
    ) -> Self {
        self.per_file = Some(Arc::new(f));
        self
    }

    /// The options `file` is uploaded with: [`per_file`](Self::per_file)'s answer (its own checkpoint
    /// included), else [`file_options`](Self::file_options). Both drivers use this.
    pub fn options_for(&self, file: &FileUpload) -> Cow<'_, UploadOptions> {
        match &self.per_file {
            Some(f) => Cow::Owned(f(file)),
            None => Cow::Owned(self.file_options()),
        }
    }

    /// Sets [`on_file_done`](Self::on_file_done).
    pub fn on_file_done(
        mut self,
        f: impl Fn(&FileUpload, &Result<UploadOutcome, Error>) + Send + Sync + 'static,
    ) -> Self {
        self.on_file_done = Some(Arc::new(f));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_settings_and_only_whether_callbacks_are_set() {
        let options = UploadOptions::default()
            .threshold(12345)
            .part_size(8 << 20)
            .concurrency(3)
            .on_progress(|_| {});
        let debug = format!("{options:?}");
        for field in [
            "threshold: 12345",
            "part_size: Some(8388608)",
            "concurrency: 3",
            "on_progress: true",
            "on_hash_progress: false",
            "verify_md5: false",
        ] {
            assert!(debug.contains(field), "{field} missing from {debug}");
        }
        assert_eq!(UploadOptions::default().concurrency(0).concurrency, 1);
    }

    #[test]
    fn every_builder_sets_its_setting() {
        let object = crate::ops::ObjectOptions {
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        let o = UploadOptions::default()
            .checkpoint("ck.json")
            .resume_unfinished(false)
            .object(object.clone())
            .forbid_overwrite(true)
            .verify_md5(true)
            .add_meta_md5(true)
            .on_hash_progress(|_| {})
            .guess_content_type(false);
        assert_eq!(o.checkpoint.as_deref(), Some(Path::new("ck.json")));
        assert!(!o.resume_unfinished && o.forbid_overwrite && o.verify_md5 && o.add_meta_md5);
        assert_eq!(o.object, object);
        assert!(o.on_hash_progress.is_some());
        assert!(!o.guess_content_type);
        let d = UploadOptions::default();
        assert!(d.resume_unfinished && !d.forbid_overwrite && !d.verify_md5 && !d.add_meta_md5);
        assert!(d.guess_content_type);
    }

    #[test]
    fn a_file_gets_a_guessed_type_unless_one_is_given_or_guessing_is_off() {
        let o = UploadOptions::default();
        let t = |o: &UploadOptions| {
            o.for_file(Path::new("a/photo.jpg"))
                .object
                .content_type
                .clone()
        };
        assert_eq!(t(&o).as_deref(), Some("image/jpeg"));
        let given = UploadOptions::default().object(crate::ops::ObjectOptions {
            content_type: Some("text/plain".into()),
            ..Default::default()
        });
        assert_eq!(t(&given).as_deref(), Some("text/plain"));
        assert_eq!(t(&UploadOptions::default().guess_content_type(false)), None);
    }

    #[test]
    fn a_batch_uploads_each_file_with_the_batch_options_less_the_checkpoint_or_its_own() {
        let file = FileUpload::new("a.bin", "k/a.bin");
        let batch = BatchOptions::default().file_parallel(0).upload(
            UploadOptions::default()
                .part_size(5 << 20)
                .checkpoint("one.json"),
        );
        assert_eq!(batch.file_parallel, 1);
        let o = batch.options_for(&file);
        assert_eq!((o.part_size, o.checkpoint.clone()), (Some(5 << 20), None));
        assert_eq!(batch.file_options().part_size, Some(5 << 20));
        let own = batch
            .clone()
            .per_file(|f| UploadOptions::default().checkpoint(format!("{}.ck", f.key)))
            .on_file_done(|_, _| {});
        assert_eq!(
            own.options_for(&file).checkpoint.as_deref(),
            Some(Path::new("k/a.bin.ck"))
        );
        assert!(own.on_file_done.is_some());
        let debug = format!("{own:?}");
        for field in [
            "file_parallel: 1",
            "on_file_done: true",
            "per_file: true",
            "part_size: Some(5242880)",
        ] {
            assert!(debug.contains(field), "{field} missing from {debug}");
        }
        assert_eq!(BatchOptions::default().file_parallel(3).file_parallel, 3);
    }
}
