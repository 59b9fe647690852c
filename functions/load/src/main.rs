//! The load Lambda's entry point: the function from its environment, no network call before
//! the first invocation.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakestar::function::serve_stage(lakestar::stage::Stage::Load).await
}
