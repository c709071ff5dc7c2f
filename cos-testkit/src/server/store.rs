//! Object and multipart-upload storage: in memory, on disk (`data_dir`) or discarded (sink).
//!
//! The index (metadata of objects, uploads and parts) always lives in memory behind one mutex. With a data
//! directory, bodies are streamed to `tmp/` and renamed into `blobs/`, and every metadata change is written as a
//! JSON file (temp file + rename), so the store is consistent after a kill and reloads on restart:
//!
//! ```text
//! DIR/objects/<sha256(key)>.json      ObjectMeta (names the blob)
//! DIR/uploads/<upload id>/upload.json UploadMeta
//! DIR/uploads/<upload id>/part-<n>.json PartMeta (names the blob)
//! DIR/blobs/<id>                      bodies
//! DIR/tmp/                            bodies being received (emptied on start)
//! ```

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use super::util::random_hex;

/// Attributes an object gets from the PUT / Initiate / form request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ObjectAttrs {
    pub content_type: String,
    /// Stored response headers: content headers, `x-cos-meta-*`, tagging, SSE; names lower-case.
    pub headers: Vec<(String, String)>,
    /// Upper-case storage class (`STANDARD` when none was given).
    pub storage_class: String,
    /// Object tags, in order (from `x-cos-tagging` or PUT Object Tagging).
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The canned ACL (`x-cos-acl`), if one was set.
    #[serde(default)]
    pub acl: Option<String>,
    /// Explicit grants as `(permission, grantee)`, grantee `id="…"` or `uri="…"` as in `x-cos-grant-*`.
    #[serde(default)]
    pub grants: Vec<(String, String)>,
    /// The ACL was set by an `AccessControlPolicy` body: `grants` is the whole list (no implicit owner grant).
    #[serde(default)]
    pub acl_from_body: bool,
}

/// An object's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Quoted.
    pub etag: String,
    pub crc64: u64,
    pub attrs: ObjectAttrs,
    pub appendable: bool,
    pub last_modified: u64,
    #[serde(default)]
    pub blob: Option<String>,
}

/// Where a body lives.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    Mem(Bytes),
    File(String),
    None,
}

#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub meta: ObjectMeta,
    pub data: Data,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UploadMeta {
    pub key: String,
    pub upload_id: String,
    pub initiated: u64,
    pub attrs: ObjectAttrs,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PartMeta {
    pub number: u32,
    pub size: u64,
    /// Quoted hex MD5.
    pub etag: String,
    pub crc64: u64,
    pub last_modified: u64,
    #[serde(default)]
    pub blob: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub meta: PartMeta,
    pub data: Data,
}

#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub meta: UploadMeta,
    pub parts: BTreeMap<u32, Part>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub objects: BTreeMap<String, Object>,
    /// The bucket's ACL (PUT Bucket ACL): only the `acl`, `grants` and `acl_from_body` fields are used.
    pub bucket_acl: ObjectAttrs,
    /// By upload id.
    pub uploads: BTreeMap<String, Upload>,
}

/// A body being received.
pub(crate) enum Writer {
    Mem(Vec<u8>),
    File {
        file: tokio::io::BufWriter<tokio::fs::File>,
        tmp: PathBuf,
    },
    Discard,
}

impl Writer {
    pub(crate) async fn write(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Writer::Mem(v) => {
                v.extend_from_slice(b);
                Ok(())
            }
            Writer::File { file, .. } => file.write_all(b).await,
            Writer::Discard => Ok(()),
        }
    }
}

/// A readable range of a body.
pub(crate) enum Reader {
    Bytes(Bytes),
    File(std::fs::File, u64),
}

pub(crate) struct Store {
    dir: Option<PathBuf>,
    sink: bool,
    state: Mutex<State>,
    /// Serialises appends (check position, extend, commit).
    pub append_lock: tokio::sync::Mutex<()>,
}

fn key_file(key: &str) -> String {
    cos_core::checksum::hex(&sha2::Sha256::digest(key.as_bytes()))
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join("tmp").join(format!("meta-{}", random_hex(2)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
    }
    std::fs::rename(&tmp, path)
}

impl Store {
    /// Opens (and, with a directory, loads) a store.
    pub(crate) fn open(dir: Option<PathBuf>, sink: bool) -> io::Result<Store> {
        let mut state = State::default();
        if let Some(d) = &dir {
            for sub in ["objects", "uploads", "blobs", "tmp"] {
                std::fs::create_dir_all(d.join(sub))?;
            }
            for e in std::fs::read_dir(d.join("tmp"))? {
                let _ = std::fs::remove_file(e?.path());
            }
            Self::load(d, &mut state, sink)?;
            if let Ok(bytes) = std::fs::read(d.join("bucket-acl.json")) {
                state.bucket_acl = serde_json::from_slice(&bytes).unwrap_or_default();
            }
        }
        Ok(Store {
            dir,
            sink,
            state: Mutex::new(state),
            append_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn load(d: &Path, state: &mut State, sink: bool) -> io::Result<()> {
        let data_of = |blob: &Option<String>| match blob {
            Some(b) if !sink => Data::File(b.clone()),
            _ => Data::None,
        };
        let mut used = std::collections::HashSet::new();
        for e in std::fs::read_dir(d.join("objects"))? {
            let p = e?.path();
            let Ok(meta) = serde_json::from_slice::<ObjectMeta>(&std::fs::read(&p)?) else {
                continue;
            };
            used.extend(meta.blob.clone());
            let data = data_of(&meta.blob);
            state
                .objects
                .insert(meta.key.clone(), Object { meta, data });
        }
        for e in std::fs::read_dir(d.join("uploads"))? {
            let dir = e?.path();
            let Ok(raw) = std::fs::read(dir.join("upload.json")) else {
                continue;
            };
            let Ok(meta) = serde_json::from_slice::<UploadMeta>(&raw) else {
                continue;
            };
            let mut parts = BTreeMap::new();
            for pe in std::fs::read_dir(&dir)? {
                let pp = pe?.path();
                let name = pp.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !name.starts_with("part-") {
                    continue;
                }
                if let Ok(pm) = serde_json::from_slice::<PartMeta>(&std::fs::read(&pp)?) {
                    used.extend(pm.blob.clone());
                    let data = data_of(&pm.blob);
                    parts.insert(pm.number, Part { meta: pm, data });
                }
            }
            state
                .uploads
                .insert(meta.upload_id.clone(), Upload { meta, parts });
        }
        // Blobs no metadata names (a crash between rename and metadata write) are garbage.
        for e in std::fs::read_dir(d.join("blobs"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !used.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    pub(crate) fn is_sink(&self) -> bool {
        self.sink
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A writer for a body of about `hint` bytes.
    pub(crate) async fn writer(&self, hint: u64) -> io::Result<Writer> {
        if self.sink {
            return Ok(Writer::Discard);
        }
        match &self.dir {
            None => Ok(Writer::Mem(Vec::with_capacity(hint.min(64 << 20) as usize))),
            Some(d) => {
                let tmp = d.join("tmp").join(random_hex(2));
                let file = tokio::fs::File::create(&tmp).await?;
                Ok(Writer::File {
                    file: tokio::io::BufWriter::with_capacity(1 << 20, file),
                    tmp,
                })
            }
        }
    }

    /// Ends a body: memory bytes, or the temp file renamed into `blobs/`.
    pub(crate) async fn finish(&self, w: Writer) -> io::Result<Data> {
        match w {
            Writer::Mem(v) => Ok(Data::Mem(Bytes::from(v))),
            Writer::Discard => Ok(Data::None),
            Writer::File { mut file, tmp } => {
                file.flush().await?;
                drop(file);
                let name = random_hex(2);
                let d = self.dir.as_ref().expect("file writers need a directory");
                tokio::fs::rename(&tmp, d.join("blobs").join(&name)).await?;
                Ok(Data::File(name))
            }
        }
    }

    /// Drops a body that will not be stored.
    pub(crate) fn abandon(&self, w: Writer) {
        if let Writer::File { tmp, .. } = w {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// Deletes a body's blob, if it has one.
    pub(crate) fn discard(&self, data: &Data) {
        if let (Data::File(name), Some(d)) = (data, &self.dir) {
            let _ = std::fs::remove_file(d.join("blobs").join(name));
        }
    }

    pub(crate) fn blob_path(&self, name: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("blobs").join(name))
    }

    /// Opens `[start, start+len)` of a body for reading.
    pub(crate) fn read(&self, data: &Data, start: u64, len: u64) -> io::Result<Reader> {
        match data {
            Data::Mem(b) => Ok(Reader::Bytes(
                b.slice(start as usize..(start + len) as usize),
            )),
            Data::File(name) => {
                let path = self.blob_path(name).ok_or(io::ErrorKind::NotFound)?;
                let mut f = std::fs::File::open(path)?;
                f.seek(SeekFrom::Start(start))?;
                Ok(Reader::File(f, len))
            }
            Data::None => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "sink mode keeps no bodies",
            )),
        }
    }

    /// Reads a whole body into memory (test helper).
    pub(crate) fn read_all(&self, data: &Data, len: u64) -> Option<Vec<u8>> {
        match self.read(data, 0, len).ok()? {
            Reader::Bytes(b) => Some(b.to_vec()),
            Reader::File(f, len) => {
                let mut v = Vec::with_capacity(len as usize);
                f.take(len).read_to_end(&mut v).ok()?;
                Some(v)
            }
        }
    }

    /// Concatenates bodies in order into a new one.
    pub(crate) async fn concat(&self, parts: Vec<(Data, u64)>) -> io::Result<Data> {
        if self.sink {
            return Ok(Data::None);
        }
        match &self.dir {
            None => {
                let total: u64 = parts.iter().map(|(_, l)| l).sum();
                let mut v = Vec::with_capacity(total as usize);
                for (d, _) in &parts {
                    if let Data::Mem(b) = d {
                        v.extend_from_slice(b);
                    }
                }
                Ok(Data::Mem(Bytes::from(v)))
            }
            Some(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || -> io::Result<Data> {
                    let tmp = dir.join("tmp").join(random_hex(2));
                    let mut out =
                        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
                    for (d, len) in &parts {
                        if let Data::File(name) = d {
                            let f = std::fs::File::open(dir.join("blobs").join(name))?;
                            io::copy(&mut f.take(*len), &mut out)?;
                        }
                    }
                    out.flush()?;
                    drop(out);
                    let name = random_hex(2);
                    std::fs::rename(&tmp, dir.join("blobs").join(&name))?;
                    Ok(Data::File(name))
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }

    /// Appends `extra` to `base` (which holds `base_len` valid bytes); returns the new body and, when the
    /// bytes are kept, the MD5 of the whole.
    pub(crate) async fn append(
        &self,
        base: &Data,
        base_len: u64,
        extra: Data,
    ) -> io::Result<(Data, Option<[u8; 16]>)> {
        use md5::Digest as _;
        match (base, &extra) {
            (Data::Mem(a), Data::Mem(b)) => {
                let mut v = Vec::with_capacity(a.len() + b.len());
                v.extend_from_slice(&a[..base_len as usize]);
                v.extend_from_slice(b);
                let md5 = md5::Md5::digest(&v).into();
                Ok((Data::Mem(Bytes::from(v)), Some(md5)))
            }
            (Data::File(a), Data::File(b)) => {
                let dir = self.dir.clone().expect("file data needs a directory");
                let (a, b) = (a.clone(), b.clone());
                tokio::task::spawn_blocking(move || -> io::Result<(Data, Option<[u8; 16]>)> {
                    let path = dir.join("blobs").join(&a);
                    let mut f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)?;
                    f.set_len(base_len)?;
                    f.seek(SeekFrom::End(0))?;
                    let extra_path = dir.join("blobs").join(&b);
                    io::copy(&mut std::fs::File::open(&extra_path)?, &mut f)?;
                    f.flush()?;
                    let _ = std::fs::remove_file(extra_path);
                    f.seek(SeekFrom::Start(0))?;
                    let mut h = md5::Md5::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = f.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    Ok((Data::File(a), Some(h.finalize().into())))
                })
                .await
                .map_err(io::Error::other)?
            }
            _ => Ok((Data::None, None)),
        }
    }

    // ---- persistence of metadata (called with the state lock held) ----

    /// Saves the bucket's ACL (`DIR/bucket-acl.json`), read back by [`Store::open`].
    pub(crate) fn save_bucket_acl(&self, acl: &ObjectAttrs) -> io::Result<()> {
        if let Some(d) = &self.dir {
            write_atomic(d, &d.join("bucket-acl.json"), &serde_json::to_vec(acl)?)?;
        }
        Ok(())
    }

    pub(crate) fn save_object(&self, meta: &ObjectMeta) -> io::Result<()> {
        if let Some(d) = &self.dir {
            let path = d
                .join("objects")
                .join(format!("{}.json", key_file(&meta.key)));
            write_atomic(d, &path, &serde_json::to_vec(meta)?)?;
        }
        Ok(())
    }

    pub(crate) fn delete_object_meta(&self, key: &str) -> io::Result<()> {
        if let Some(d) = &self.dir {
            let path = d.join("objects").join(format!("{}.json", key_file(key)));
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn save_upload(&self, meta: &UploadMeta) -> io::Result<()> {
        if let Some(d) = &self.dir {
            let ud = d.join("uploads").join(&meta.upload_id);
            std::fs::create_dir_all(&ud)?;
            write_atomic(d, &ud.join("upload.json"), &serde_json::to_vec(meta)?)?;
        }
        Ok(())
    }

    pub(crate) fn save_part(&self, upload_id: &str, meta: &PartMeta) -> io::Result<()> {
        if let Some(d) = &self.dir {
            let path = d
                .join("uploads")
                .join(upload_id)
                .join(format!("part-{}.json", meta.number));
            write_atomic(d, &path, &serde_json::to_vec(meta)?)?;
        }
        Ok(())
    }

    /// Removes an upload's metadata and its parts' blobs.
    pub(crate) fn delete_upload(&self, upload: &Upload) -> io::Result<()> {
        for p in upload.parts.values() {
            self.discard(&p.data);
        }
        if let Some(d) = &self.dir {
            let ud = d.join("uploads").join(&upload.meta.upload_id);
            // upload.json first, so that a crash half-way leaves no upload that looks alive.
            let _ = std::fs::remove_file(ud.join("upload.json"));
            match std::fs::remove_dir_all(ud) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The blob name of a body, for its metadata.
    pub(crate) fn blob_name(data: &Data) -> Option<String> {
        match data {
            Data::File(n) => Some(n.clone()),
            _ => None,
        }
    }
}
