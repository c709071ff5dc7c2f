//! Transfers built from the single operations: the multipart planner, resumable checkpoints and the batch
//! task list. Everything here is sans-IO, like the rest of the crate.

pub mod checkpoint;
pub mod multipart;
pub mod plan;
pub mod queue;

pub use checkpoint::{Checkpoint, FinishedPart, SourceFingerprint, CHECKPOINT_VERSION};
pub use multipart::{
    MultipartUpload, UploadConfig, UploadOutcome, UploadProgress, DEFAULT_MAX_IN_FLIGHT,
};
pub use plan::{choose_upload, PartPlan, PartRange, UploadMethod};
pub use queue::{QueueOutput, TaskId, TaskState, UploadQueue};

#[cfg(test)]
mod tests;
