//! The trigger Lambda's entry point: clients from the environment, no network call before
//! the first event; a missing setting is reported by every invocation.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lakestar_trigger::TriggerFunction;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakestar::function::init_logging();
    let function = TriggerFunction::from_env().await.map_err(|error| {
        tracing::error!(error_type = error.error_type(), "{error}");
        Diagnostic::from(error)
    });
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match function {
            Ok(function) => function.handle(event).await,
            Err(diagnostic) => Err(diagnostic.clone()),
        }
    }))
    .await
}
