//! The validate Lambda's entry point: build once, then serve invocations.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lakestar_validate::ValidateFunction;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = ValidateFunction::from_env().await?;
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { function.handle(event).await })).await
}
