//! The offline Lakestar stack as a library: the Amazon States Language interpreter and the
//! local stack that runs the real state machine over the embedded S3 (the `lakestar` binary
//! is a thin command line over it).

pub mod advice;
pub mod asl;
pub mod check_api;
pub mod console;
pub mod home;
pub mod landing;
pub mod reports;
pub mod sfn;
pub mod stack;
pub mod store;
pub mod template;
