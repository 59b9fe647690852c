//! The step timings of a load, logged at debug level.

use std::time::Instant;

/// Debug-level timings of a load's steps (`LAKESTAR_LOG=lakestar=debug` offline,
/// `AWS_LAMBDA_LOG_LEVEL=DEBUG` in Lambda).
pub(super) struct Steps<'a> {
    run: &'a str,
    table: &'a str,
    last: Instant,
}

impl<'a> Steps<'a> {
    pub(super) fn new(run: &'a str, table: &'a str) -> Steps<'a> {
        Steps { run, table, last: Instant::now() }
    }

    pub(super) fn done(&mut self, step: &str, rows: usize) {
        let ms = self.last.elapsed().as_millis() as u64;
        tracing::debug!(run = %self.run, table = %self.table, step, rows, ms, "Load step done.");
        self.last = Instant::now();
    }
}
