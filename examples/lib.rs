//! Examples for cos-rs.
