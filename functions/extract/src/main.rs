//! The extract Lambda's entry point: scheduled by EventBridge Scheduler, it extracts the
//! contract's due sources into `landing/` (see `lakestar::function::extract`). Nothing is
//! fetched before the first invocation: a missing setting is that invocation's named error.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakestar::function::init_logging();
    let environment = lakestar::config::Environment::get();
    let function = lakestar::function::extract::from_env(environment).await;
    let function = &function;
    let diagnostic = |error: &lakestar::Error| Diagnostic {
        error_type: error.error_type().to_string(),
        error_message: error.to_string(),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match function {
            Ok(function) => function.handle(&event.payload).await.map_err(|error| diagnostic(&error)),
            Err(error) => Err(diagnostic(error)),
        }
    }))
    .await
}
