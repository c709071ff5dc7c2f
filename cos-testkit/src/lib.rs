//! cos-testkit: a local COS-compatible server, fault injection, and recorded-exchange replay.
pub mod replay;
