//! Lakestar: files dropped into S3 become a clean, PII-masked Parquet lake and a star-schema
//! warehouse. This crate holds every stage's logic, independent of Lambda; the function
//! binaries and the offline stack are thin layers over it.

pub mod config;
pub mod contract;
pub mod dry_run;
mod error;
#[cfg(feature = "extract")]
pub mod extract;
pub mod function;
pub mod infer;
pub mod ingest;
pub mod lake;
pub mod load;
pub mod mask;
pub mod metrics;
pub mod quality;
pub mod run;
pub mod stage;
pub mod state;
pub mod trigger;
pub mod types;
pub mod validate;
pub mod warehouse;

pub use error::{Error, Result, error_chain};
