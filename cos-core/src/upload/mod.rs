//! Transfers built from the single operations: the multipart planner, resumable checkpoints and the batch
//! task list. Everything here is sans-IO, like the rest of the crate.
//!
//! * [`plan`]: how a length is cut into parts ([`PartPlan`]) and when a single PUT is used
//!   ([`choose_upload`]).
//! * [`multipart`]: [`MultipartUpload`], a whole multipart upload as one [`Task`](crate::task::Task), with
//!   retries, pause/cancel, checkpoint resume, find-unfinished resume and streams of unknown length.
//! * [`checkpoint`]: the serde [`Checkpoint`] a driver persists (atomically) to resume later.
//! * [`queue`]: [`UploadQueue`], the batch task list that decides which file starts next (shared with
//!   downloads, in [`crate::queue`]).
//!
//! * [`transfer`]: [`UploadTask`], a whole file or stream upload with every decision (checkpoint load and
//!   lease, pre-hash, single PUT or multipart, resume, stale abort, cleanup, throttled progress).
//!
//! A driver runs these tasks with the same loop as any task (see the loop contract in [`crate::task`]):
//! it sends requests and performs the [`IoRequest`](crate::task::IoRequest)s the task asks for (read the
//! checkpoint, store or remove it, hash a range, read the stream), and decides nothing itself.

pub mod checkpoint;
pub mod content_type;
pub mod file;
mod local;
pub mod multipart;
pub mod options;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod transfer;

pub use checkpoint::{
    Checkpoint, FinishedPart, Lease, LeaseCheck, LeaseDecision, SourceFingerprint,
    CHECKPOINT_VERSION, LEASE_RENEW, LEASE_TTL,
};
pub use content_type::{content_type_for_extension, content_type_for_path, EXTENSION_TYPES};
pub use file::{
    check_file_upload, checkpoint_after, checkpoint_from_bytes, checkpoint_to_bytes,
    derived_checkpoint_name, start_file_upload, start_stream_upload, with_meta_md5,
    CheckpointAfter, FileStart,
};
pub use local::{PausedFn, RangeDigest, Reports};
pub use multipart::{
    MultipartUpload, UploadConfig, UploadOutcome, UploadProgress, DEFAULT_MAX_IN_FLIGHT,
    MAX_LIST_PAGES,
};
pub use options::{
    BatchOptions, FileDoneFn, FileOptionsFn, FileUpload, ProgressFn, UploadOptions,
    DEFAULT_FILE_PARALLEL,
};
pub use plan::{choose_upload, PartPlan, PartRange, UploadMethod};
pub use progress::{Progress, ProgressMeter, DEFAULT_PROGRESS_INTERVAL};
pub use queue::{QueueOutput, TaskId, TaskState, UploadQueue, Waited};
pub use transfer::UploadTask;

#[cfg(test)]
mod tests;
