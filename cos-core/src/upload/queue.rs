//! The batch task list, under its old path: it is shared by uploads and downloads and lives in
//! [`crate::queue`] ([`UploadQueue`] is [`TransferQueue`](crate::queue::TransferQueue)).

pub use crate::queue::*;
