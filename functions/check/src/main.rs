//! The check Lambda's entry point: behind a function URL (AWS_IAM auth), a file or an object
//! under `landing/` checked against the contract as `lakestar validate --json` checks it;
//! nothing written to the lake. Nothing is fetched before the first invocation: a missing
//! setting is that invocation's named error.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakestar::function::init_logging();
    let environment = lakestar::config::Environment::get();
    // Why the environment describes no function is every invocation's answer.
    let function = lakestar::function::check::from_env(environment)
        .await
        .map_err(|error| Diagnostic { error_type: error.error_type().to_string(), error_message: error.to_string() });
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match function {
            Ok(function) => Ok::<Value, Diagnostic>(function.handle(&event.payload).await),
            Err(diagnostic) => Err(diagnostic.clone()),
        }
    }))
    .await
}
