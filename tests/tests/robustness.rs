//! Random byte mutations of the example's files through ingest and validate: no panic, a
//! named error or a successful run, and never a lost row.

mod common;

use common::*;
use lakestar_ingest::IngestFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::LambdaEvent;
use proptest::prelude::*;

/// The error names a run may end with on bad input: each a clear, named failure.
const EXPECTED_ERRORS: [&str; 4] = ["SchemaMismatch", "UnreadableFile", "InvalidInput", "UnknownDataset"];

const FILES: [(&str, &str, &str); 5] = [
    ("customers", "2024-01-01/customers.csv", "landing/2024-01-01/customers.csv"),
    ("products", "2024-01-02/products_shop.csv", "landing/2024-01-02/products_shop.csv"),
    ("stores", "2024-01-01/stores.json", "landing/2024-01-01/stores.json"),
    ("sales", "2024-01-02/sales.csv.gz", "landing/2024-01-02/sales.csv.gz"),
    ("sales", "2024-01-01/sales.csv", "landing/2024-01-01/sales.csv"),
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip(at, byte)),
        (
            any::<usize>(),
            prop_oneof![
                Just(b'"'),
                Just(b','),
                Just(b'\n'),
                Just(b'\r'),
                Just(0u8),
                Just(0xFF),
                Just(b'{'),
                any::<u8>()
            ]
        )
            .prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Flip(at, byte) => {
            let at = at % bytes.len();
            bytes[at] ^= byte | 1;
        }
        Mutation::Insert(at, byte) => {
            let at = at % (bytes.len() + 1);
            bytes.insert(at, byte);
        }
        Mutation::Delete(at) => {
            let at = at % bytes.len();
            bytes.remove(at);
        }
        Mutation::Truncate(at) => {
            let at = at % bytes.len();
            bytes.truncate(at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic_and_never_lose_a_row(
        file in 0..FILES.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let (dataset, path, key) = FILES[file];
        let mut bytes = example_file(path);
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async {
            let lake = TestLake::start().await;
            let contract = retail_contract();
            lake.put(key, &bytes).await;
            let run = run_for(dataset, key, bytes.len());
            let mut state = serde_json::json!({ "run": run });
            let ingested = match IngestFunction::new(lake.lake.clone(), contract.clone()).handle(LambdaEvent::new(state.clone(), Default::default())).await {
                Ok(ingested) => ingested,
                Err(error) => {
                    prop_assert!(EXPECTED_ERRORS.contains(&error.error_type.as_str()), "{}: {}", error.error_type, error.error_message);
                    prop_assert!(error.error_message.contains(key), "the error names the file: {}", error.error_message);
                    return Ok(());
                }
            };
            prop_assert_eq!(ingested.rows, ingested.raw_rows + ingested.rejected);
            state["ingest"] = serde_json::to_value(&ingested).expect("JSON");
            let validated = ValidateFunction::new(lake.lake.clone(), contract).handle(LambdaEvent::new(state, Default::default())).await;
            match validated {
                Ok(validated) => {
                    prop_assert_eq!(validated.received, ingested.rows);
                    prop_assert_eq!(validated.received, validated.valid + validated.rejected);
                }
                Err(error) => prop_assert!(EXPECTED_ERRORS.contains(&error.error_type.as_str()), "{}: {}", error.error_type, error.error_message),
            }
            Ok(())
        })?;
    }
}
