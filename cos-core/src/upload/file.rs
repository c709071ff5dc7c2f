//! Whole-file uploads, decided once for both drivers.
//!
//! A driver measures the file (size, modification time), reads the checkpoint file if it keeps one (after
//! [`LeaseCheck`](super::checkpoint::LeaseCheck) said no live upload holds it), computes the file's MD5
//! when [`UploadOptions::add_meta_md5`] asks for it, and hands all of it to [`start_file_upload`]. The
//! answer is the task to run:
//!
//! * [`FileStart::SinglePut`] at or below [`UploadOptions::threshold`], whatever a checkpoint says: the
//!   size decides first. A checkpoint left by an earlier multipart attempt of the same key (the file
//!   shrank) names a stale upload, returned as an Abort to send once the PUT succeeded.
//! * [`FileStart::Multipart`] above it: resumed from the checkpoint (a changed file aborts the stale
//!   upload and starts over, see [`MultipartUpload::resume`]), else, with
//!   [`UploadOptions::resume_unfinished`], continuing the newest unfinished upload of the key found on the
//!   server, else a new upload. With a checkpoint path the task holds a lease on it
//!   ([`MultipartUpload::lease_owner`]).
//!
//! The checkpoint's bytes are read and written only through [`checkpoint_from_bytes`] and
//! [`checkpoint_to_bytes`] (JSON); what happens to the checkpoint file when a run ends is
//! [`checkpoint_after`]; a queue's derived checkpoint name is [`derived_checkpoint_name`].
//! `x-cos-meta-md5` is attached one way ([`with_meta_md5`]) for both a single PUT and a multipart upload.

use super::checkpoint::{Checkpoint, SourceFingerprint};
use super::multipart::{MultipartUpload, UploadOutcome};
use super::options::UploadOptions;
use super::plan::{choose_upload, UploadMethod};
use crate::checksum::md5_hex;
use crate::config::{validate_file_key, Config};
use crate::error::{Error, InvalidInput};
use crate::ops::{AbortMultipartUpload, ObjectOptions, PutObject};
use crate::task::OneShot;

/// The task a file upload runs; see the [module docs](self).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per file
pub enum FileStart {
    /// One PUT Object streaming the whole file ([`RequestBody::Source`](crate::task::RequestBody::Source)
    /// `0..len`). Once it succeeded, send `stale` (if any) and remove the checkpoint file.
    SinglePut {
        /// The PUT.
        task: OneShot<PutObject>,
        /// The multipart upload a checkpoint of this key left behind, to abort after the PUT.
        stale: Option<AbortMultipartUpload>,
    },
    /// A multipart upload; with a checkpoint path kept, it asks for its checkpoint to be stored through
    /// [`IoRequest::StoreCheckpoint`](crate::task::IoRequest::StoreCheckpoint).
    Multipart(MultipartUpload),
}

/// Decides how a file of `source.size` bytes is uploaded to `key`: see the [module docs](self). `saved` is
/// the checkpoint read from the checkpoint file (`None`: no file, or no checkpoint path); `meta_md5` is the
/// file's hex MD5 when [`UploadOptions::add_meta_md5`] is set; `lease_owner` names this run when a
/// checkpoint path is kept. Bad input (key, part size, headers, a checkpoint of another object) fails here,
/// before anything is sent.
pub fn start_file_upload(
    config: Config,
    key: &str,
    options: &UploadOptions,
    source: SourceFingerprint,
    saved: Option<Checkpoint>,
    meta_md5: Option<String>,
    lease_owner: Option<&str>,
) -> Result<FileStart, Error> {
    validate_file_key(key)?;
    if let Some(cp) = &saved {
        cp.ensure_for(config.bucket.as_str(), key)?;
    }
    if options.add_meta_md5 != meta_md5.is_some() {
        return Err(InvalidInput::Parameter {
            name: "meta_md5",
            reason: "the file's MD5 is given exactly when add_meta_md5 is set".into(),
        }
        .into());
    }
    let len = source.size;
    match choose_upload(len, Some(options.threshold), options.part_size)? {
        UploadMethod::SinglePut => {
            let mut object = options.object.clone();
            if options.forbid_overwrite {
                object.forbid_overwrite = true;
            }
            if let Some(md5) = &meta_md5 {
                object = with_meta_md5(object, md5)?;
            }
            let put = PutObject::new(key)
                .with_source(len)
                .options(object)
                .verify_md5(options.verify_md5);
            let task = OneShot::new(put, config)?;
            let stale = saved.map(|cp| cp.abort_upload());
            Ok(FileStart::SinglePut { task, stale })
        }
        UploadMethod::Multipart(plan) => {
            let upload = options.upload_config(Some(plan.part_size()), meta_md5);
            let task = match saved {
                Some(cp) => MultipartUpload::resume(config, cp, source, upload)?,
                None if options.resume_unfinished => {
                    MultipartUpload::find_unfinished(config, key, len, upload)?
                        .source_fingerprint(source)?
                }
                None => {
                    MultipartUpload::new(config, key, len, upload)?.source_fingerprint(source)?
                }
            };
            Ok(FileStart::Multipart(match lease_owner {
                Some(owner) => task.lease_owner(owner),
                None => task,
            }))
        }
    }
}

/// The task of a stream upload of unknown length (see [`MultipartUpload::stream`]): the options' part size
/// (default [`DEFAULT_PART_SIZE`](super::plan::DEFAULT_PART_SIZE)), concurrency and headers. Refuses
/// [`UploadOptions::add_meta_md5`] (a stream's MD5 is known only at its end) and a checkpoint (a stream
/// cannot be read again) with [`InvalidInput`], before anything is sent. The driver reads parts of
/// [`MultipartUpload::part_size`] bytes while [`MultipartUpload::wants_part`] says so.
pub fn start_stream_upload(
    config: Config,
    key: &str,
    options: &UploadOptions,
) -> Result<MultipartUpload, Error> {
    if options.add_meta_md5 {
        return Err(InvalidInput::Parameter {
            name: "add_meta_md5",
            reason: "a stream's MD5 is known only at its end; set the metadata yourself".into(),
        }
        .into());
    }
    let part_size = options.part_size.unwrap_or(super::plan::DEFAULT_PART_SIZE);
    MultipartUpload::stream(config, key, options.upload_config(Some(part_size), None))
}

/// The checks of [`start_file_upload`] that need no checkpoint and no MD5 (the key, the part size for this
/// length): a driver asks them before it reads anything, so that bad input fails at once.
pub fn check_file_upload(key: &str, options: &UploadOptions, len: u64) -> Result<(), Error> {
    validate_file_key(key)?;
    choose_upload(len, Some(options.threshold), options.part_size)?;
    Ok(())
}

/// Adds `x-cos-meta-md5` (UploadAddMetaMd5) with the file's hex MD5, the one way both a single PUT and a
/// multipart upload carry it. The MD5 must be 32 hex digits.
pub fn with_meta_md5(mut object: ObjectOptions, md5_hex: &str) -> Result<ObjectOptions, Error> {
    if md5_hex.len() != 32 || !md5_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InvalidInput::Parameter {
            name: "meta_md5",
            reason: "expected 32 hex digits".into(),
        }
        .into());
    }
    push_meta_md5(&mut object, md5_hex);
    Ok(object)
}

/// The header itself (the MD5 was checked).
pub(crate) fn push_meta_md5(object: &mut ObjectOptions, md5_hex: &str) {
    object
        .extra_headers
        .push(("x-cos-meta-md5".into(), md5_hex.to_ascii_lowercase()));
}

/// The checkpoint in a checkpoint file's bytes, checked to be one of `bucket`/`key` (resuming another
/// object's upload would write the wrong object): [`InvalidInput::Checkpoint`] otherwise, before anything
/// is sent (delete the file to start over).
pub fn checkpoint_from_bytes(bytes: &[u8], bucket: &str, key: &str) -> Result<Checkpoint, Error> {
    let cp: Checkpoint = serde_json::from_slice(bytes)
        .map_err(|e| InvalidInput::Checkpoint(format!("not a checkpoint: {e}")))?;
    cp.ensure_for(bucket, key)?;
    Ok(cp)
}

/// The bytes of a checkpoint file (JSON). Store them atomically: a temporary file next to the checkpoint,
/// synced, then renamed over it (a torn checkpoint is worse than none).
pub fn checkpoint_to_bytes(checkpoint: &Checkpoint) -> Vec<u8> {
    serde_json::to_vec_pretty(checkpoint).expect("a checkpoint always serializes")
}

/// What becomes of the checkpoint file when a file upload's run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointAfter {
    /// Remove it: the upload succeeded, or was cancelled (its multipart upload is aborted).
    Remove,
    /// Keep it for a resume: the run paused or failed.
    Keep,
}

/// The one cleanup rule: success and cancel remove the checkpoint, a pause or a failure keeps it.
pub fn checkpoint_after(result: &Result<UploadOutcome, Error>, paused: bool) -> CheckpointAfter {
    match result {
        _ if paused => CheckpointAfter::Keep,
        Ok(_) | Err(Error::Cancelled) => CheckpointAfter::Remove,
        Err(_) => CheckpointAfter::Keep,
    }
}

/// The file name of the checkpoint a queued upload uses when it was given none: the same for both drivers,
/// from the bucket, the file's absolute (canonical when possible) path and the key.
pub fn derived_checkpoint_name(bucket: &str, absolute_path: &str, key: &str) -> String {
    format!(
        "{}.json",
        md5_hex(format!("{bucket}\0{absolute_path}\0{key}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Now, Output, Task};
    use crate::upload::plan::MIB;
    use crate::Credentials;
    use std::time::{Duration, Instant, SystemTime};

    fn config() -> Config {
        Config::new("b-1250000000", "ap-guangzhou", Credentials::new("id", "k")).unwrap()
    }

    fn fp(size: u64) -> SourceFingerprint {
        SourceFingerprint {
            size,
            mtime_nanos: Some(7),
        }
    }

    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn now() -> Now {
        Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn first_request(start: FileStart) -> http::Request<crate::task::RequestBody> {
        let t = match start {
            FileStart::SinglePut { mut task, .. } => match task.poll_output(now()) {
                Output::Transmit(t) => t,
                other => panic!("{other:?}"),
            },
            FileStart::Multipart(mut task) => match task.poll_output(now()) {
                Output::Transmit(t) => t,
                other => panic!("{other:?}"),
            },
        };
        t.request
    }

    #[test]
    fn the_size_decides_first_and_a_stale_checkpoint_is_aborted_after_a_put() {
        let cp = Checkpoint::new("b-1250000000", "k", "up-1", MIB, fp(3 * MIB));
        let o = UploadOptions::default();
        let start = start_file_upload(config(), "k", &o, fp(10), Some(cp.clone()), None, None);
        let FileStart::SinglePut { stale, .. } = start.unwrap() else {
            panic!("10 bytes go in one PUT, whatever the checkpoint says")
        };
        assert!(format!("{:?}", stale.unwrap()).contains("up-1"));
        // Above the threshold the checkpoint is resumed (List Parts of its upload first).
        let start =
            start_file_upload(config(), "k", &o, fp(3 * MIB), Some(cp), None, None).unwrap();
        let r = first_request(start);
        assert_eq!(r.method(), "GET");
        assert!(r.uri().query().unwrap().contains("uploadId=up-1"));
        // Without one: search for an unfinished upload, or (if told not to) initiate.
        let start = start_file_upload(config(), "k", &o, fp(3 * MIB), None, None, None).unwrap();
        let r = first_request(start);
        assert_eq!(r.method(), "GET", "List Multipart Uploads, not Initiate");
        assert!(r.uri().query().unwrap().contains("uploads"));
        let o2 = o.clone().resume_unfinished(false);
        let start = start_file_upload(config(), "k", &o2, fp(3 * MIB), None, None, None).unwrap();
        assert_eq!(first_request(start).method(), "POST");
    }

    #[test]
    fn meta_md5_is_attached_one_way() {
        let md5 = "0123456789ABCDEF0123456789abcdef";
        let o = UploadOptions::default().add_meta_md5(true);
        for (size, resume) in [(10, true), (3 * MIB, false)] {
            let o = o.clone().resume_unfinished(resume);
            let start =
                start_file_upload(config(), "k", &o, fp(size), None, Some(md5.into()), None);
            let r = first_request(start.unwrap());
            assert_eq!(
                r.headers()["x-cos-meta-md5"],
                "0123456789abcdef0123456789abcdef"
            );
        }
        assert!(start_file_upload(config(), "k", &o, fp(10), None, None, None).is_err());
        assert!(
            start_file_upload(config(), "k", &o, fp(10), None, Some("x".into()), None).is_err()
        );
    }

    #[test]
    fn verify_md5_asks_for_the_md5_of_a_single_put_and_of_every_part() {
        let md5_of = |r: http::Request<crate::task::RequestBody>| match r.body() {
            crate::task::RequestBody::Source { md5, .. } => *md5,
            other => panic!("{other:?}"),
        };
        for on in [false, true] {
            let o = UploadOptions::default().verify_md5(on);
            let start = start_file_upload(config(), "k", &o, fp(10), None, None, None).unwrap();
            assert_eq!(
                md5_of(first_request(start)),
                on,
                "single PUT, verify_md5 {on}"
            );
            assert_eq!(o.upload_config(Some(MIB), None).verify_md5, on);
        }
    }

    #[test]
    fn bad_input_fails_before_anything_is_sent() {
        let o = UploadOptions::default();
        assert!(start_file_upload(config(), "dir/", &o, fp(10), None, None, None).is_err());
        let other = Checkpoint::new("b-1250000000", "other", "up-1", MIB, fp(3 * MIB));
        let e = start_file_upload(config(), "k", &o, fp(3 * MIB), Some(other), None, None);
        assert!(matches!(
            e,
            Err(Error::InvalidInput(InvalidInput::Checkpoint(_)))
        ));
    }

    #[test]
    fn check_file_upload_refuses_a_bad_key_or_part_size_before_anything_is_read() {
        let o = UploadOptions::default();
        assert!(check_file_upload("k", &o, 3 * MIB).is_ok());
        assert!(matches!(
            check_file_upload("dir/", &o, 10),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            check_file_upload("", &o, 10),
            Err(Error::InvalidInput(_))
        ));
        // 1 MiB parts cannot hold 20 GiB in 10,000 parts.
        let small = UploadOptions::default().part_size(MIB);
        assert!(matches!(
            check_file_upload("k", &small, 20 * 1024 * MIB),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn with_meta_md5_takes_exactly_32_hex_digits_and_lowercases_them() {
        let object = with_meta_md5(ObjectOptions::default(), &"AB".repeat(16)).unwrap();
        assert_eq!(
            object.extra_headers,
            [("x-cos-meta-md5".to_string(), "ab".repeat(16))]
        );
        for bad in [
            "0".repeat(31),
            "0".repeat(33),
            format!("{}g", "0".repeat(31)),
            String::new(),
        ] {
            assert!(
                matches!(
                    with_meta_md5(ObjectOptions::default(), &bad),
                    Err(Error::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checkpoint_bytes_round_trip_and_are_checked() {
        let cp = Checkpoint::new("b-1250000000", "k", "up-1", MIB, fp(3 * MIB));
        let bytes = checkpoint_to_bytes(&cp);
        assert_eq!(
            checkpoint_from_bytes(&bytes, "b-1250000000", "k").unwrap(),
            cp
        );
        assert!(checkpoint_from_bytes(&bytes, "b-1250000000", "k2").is_err());
        assert!(checkpoint_from_bytes(b"{", "b-1250000000", "k").is_err());
    }

    #[test]
    fn cleanup_rule_and_derived_names() {
        let ok: Result<UploadOutcome, Error> = Err(Error::Cancelled);
        assert_eq!(checkpoint_after(&ok, false), CheckpointAfter::Remove);
        assert_eq!(checkpoint_after(&ok, true), CheckpointAfter::Keep);
        let failed: Result<UploadOutcome, Error> = Err(Error::Source("x".into()));
        assert_eq!(checkpoint_after(&failed, false), CheckpointAfter::Keep);
        let a = derived_checkpoint_name("b", "/tmp/a", "k");
        assert_eq!(a.len(), 32 + 5);
        assert_ne!(a, derived_checkpoint_name("b", "/tmp/a", "k2"));
        assert_eq!(a, derived_checkpoint_name("b", "/tmp/a", "k"));
    }
}
