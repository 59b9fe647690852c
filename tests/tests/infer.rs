//! Issue 27: contracts drafted from sample files. Generated files with known types (every
//! type, date formats, PII kinds, a composite key) are drafted as such; every draft passes the
//! contract check, and running it over its own files quarantines nothing of clean data; every
//! corpus file gives a draft or an error naming it, never a panic.

mod common;

use common::*;
use lakestar::contract::{Contract, DataType};
use lakestar::dry_run::{DryRunOptions, dry_run};
use lakestar::infer::{Draft, DraftOptions, draft, read_sample};

/// Drafts the files (key, bytes) of one dataset through a scratch lake.
async fn infer(lake: &TestLake, files: &[(&str, Vec<u8>)], dataset: Option<&str>) -> lakestar::Result<Draft> {
    let mut samples = Vec::new();
    for (key, bytes) in files {
        lake.put(key, bytes).await;
        samples
            .push(read_sample(&lake.lake, key, bytes.len() as u64, &bytes[..bytes.len().min(65_536)], 100_000).await?);
    }
    draft(samples, &DraftOptions { dataset: dataset.map(str::to_string), ..Default::default() })
}

/// 240 order lines of every kind of column, with known types.
fn orders_csv(seed: u64) -> String {
    let mut text = String::from(
        "Order ID,Line,Order Date,Ship Date,Booked At,Quantity,Unit Price,Weight KG,Gift,Email,Phone,Card Number,NI Number,SSN,Post Code,First Name,Channel,Customer ID,Product Code\n",
    );
    let mut state = seed;
    let mut next = |modulo: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % modulo
    };
    let cards = ["4111 1111 1111 1111", "5500 0000 0000 0004", "3400 0000 0000 009"];
    let postcodes = ["LS1 4AP", "M1 2AB", "SW1A 1AA", "EH1 1YZ", "CB2 1TN"];
    let names = ["Amelia", "Oliver", "Isla", "Noah", "Ava", "Leo"];
    for order in 0..120 {
        for line in 1..=2 {
            let day = next(28) + 1;
            let month = next(12) + 1;
            text.push_str(&format!(
                "O{:05},{line},2024-{month:02}-{day:02},{day:02}.{month:02}.2024,2024-{month:02}-{day:02}T{:02}:{:02}:00+01:00,{},{}.{:02},{}.{}e-1,{},user{order}@example.com,07700 9{:05},{},JG 10 37 42 A,123-45-{:04},{},{},{},C{:04},P-{:03}\n",
                order + 10_000,
                next(24),
                next(60),
                next(20) + 1,
                next(200),
                next(100),
                next(90) + 1,
                next(9),
                ["yes", "no"][next(2) as usize],
                next(100_000),
                cards[next(3) as usize],
                next(9000) + 1000,
                postcodes[next(5) as usize],
                names[next(6) as usize],
                ["store", "web", "phone"][next(3) as usize],
                next(50) + 1000,
                next(40) + 1,
            ));
        }
    }
    text
}

fn column<'d>(draft: &'d Draft, name: &str) -> &'d lakestar::infer::ColumnGuess {
    draft.columns.iter().find(|column| column.name == name).unwrap_or_else(|| panic!("no column {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_files_are_drafted_with_their_types_formats_personal_data_and_key() {
    let lake = TestLake::start().await;
    let files = [
        ("landing/2024-06-01/orders_export.csv", orders_csv(1).into_bytes()),
        ("landing/2024-06-02/orders_export.csv", orders_csv(2).into_bytes()),
    ];
    let draft = infer(&lake, &files, None).await.expect("drafted");
    assert_eq!(draft.dataset, "orders_export");
    assert_eq!(draft.patterns, ["landing/**/orders_export*.csv"]);
    let expected: [(&str, DataType, Option<&str>); 8] = [
        ("line", DataType::Integer, None),
        ("order_date", DataType::Date, None),
        ("ship_date", DataType::Date, Some("%d.%m.%Y")),
        ("booked_at", DataType::Timestamp, None),
        ("quantity", DataType::Integer, None),
        ("unit_price", DataType::Decimal { precision: 18, scale: 2 }, None),
        ("weight_kg", DataType::Float, None),
        ("gift", DataType::Boolean, None),
    ];
    for (name, data_type, format) in expected {
        let guess = column(&draft, name);
        assert_eq!((guess.data_type, guess.format.as_deref()), (data_type, format), "{name}: {:?}", guess.notes);
        assert!(guess.required, "{name} is never empty");
    }
    let masking = |name: &str| column(&draft, name).pii.as_ref().map(|pii| pii.fields.clone()).unwrap_or_default();
    assert!(masking("email").contains("email_hash") && column(&draft, "email").email);
    assert!(masking("phone").contains("partial") && masking("card_number").contains("partial"));
    assert!(masking("ni_number").contains("hash") && masking("ssn").contains("hash"));
    assert!(masking("post_code").contains("postcode_district") && masking("first_name").contains("hash"));
    for name in ["phone", "card_number", "customer_id"] {
        assert_eq!(column(&draft, name).data_type, DataType::String, "{name} stays text");
    }
    assert_eq!(
        column(&draft, "channel").allowed.as_deref(),
        Some(&["phone".to_string(), "store".into(), "web".into()][..])
    );
    assert_eq!(column(&draft, "customer_id").allowed, None, "ids are not categories");
    assert_eq!(draft.natural_key.0, ["order_id", "line"], "{}", draft.natural_key.1);
    assert_eq!((draft.kind, draft.time_column.as_deref()), ("fact", Some("order_date")));

    // The draft is a contract, and over its own files it keeps every row.
    let text = draft.to_toml();
    let contract = Contract::parse("draft", &text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert!(text.contains("[datasets.orders_export.csv]\ndelimiter = \",\""), "the header's delimiter: {text}");
    for (key, bytes) in &files {
        let report = dry_run(&lake.lake, &contract, "orders_export", key, bytes.len() as u64, DryRunOptions::default())
            .await
            .expect("checked");
        assert_eq!((report.received, report.rejected), (240, 0), "{key}: {:?}\n{text}", report.rejects_per_rule);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_spelled_otherwise_become_aliases_and_day_month_order_is_settled_by_the_data() {
    let lake = TestLake::start().await;
    let first = b"customer_id,forename,dob,updated_at,tier\nC1,Ann,14/03/1985,2024-01-01 08:00:00,gold\nC2,Bob,02/11/1979,2024-01-01 09:00:00,gold\nC3,Cy,30/01/1990,2024-01-01 10:00:00,silver\n".to_vec();
    let second = "Customer ID;First Name;Date of Birth;Updated At;Tier\nC1;Ann;14/03/1985;2024-01-02 08:00:00;Gold\nC4;Dee;05/05/1995;2024-01-02 08:00:00;silver\nC5;Eve;07/08/2000;2024-01-02 08:00:00;gold\n"
        .as_bytes()
        .to_vec();
    let draft = infer(&lake, &[("landing/d1/crm.csv", first), ("landing/d2/crm.csv", second)], Some("people"))
        .await
        .expect("drafted");
    let names: Vec<&str> = draft.columns.iter().map(|column| column.name.as_str()).collect();
    assert_eq!(names, ["customer_id", "forename", "dob", "updated_at", "tier"]);
    assert_eq!(column(&draft, "forename").aliases, ["first_name"]);
    assert_eq!(column(&draft, "dob").aliases, ["date_of_birth"]);
    assert_eq!(column(&draft, "dob").format.as_deref(), Some("%d/%m/%Y"), "a 30 and a 14 settle the order");
    assert!(column(&draft, "dob").pii.as_ref().is_some_and(|pii| pii.fields.contains("year")));
    assert_eq!(column(&draft, "updated_at").data_type, DataType::Timestamp);
    assert_eq!((draft.kind, draft.time_column.as_deref()), ("dimension", Some("updated_at")));
    assert_eq!(draft.natural_key.0, ["customer_id"]);
    assert!(Contract::parse("draft", &draft.to_toml()).is_ok(), "{}", draft.to_toml());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_file_gives_a_draft_the_check_accepts_or_an_error_naming_it() {
    let lake = TestLake::start().await;
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut drafted = 0;
    for entry in std::fs::read_dir(&corpus).expect("the corpus").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".py") || name == "expected.json" {
            continue;
        }
        let key = format!("landing/corpus/{name}");
        let bytes = std::fs::read(entry.path()).expect("a corpus file");
        match infer(&lake, &[(&key, bytes)], Some("corpus")).await {
            Ok(draft) => {
                let text = draft.to_toml();
                if draft.samples[0].format == "parquet" {
                    assert!(!text.contains("encoding ="), "{name}: Parquet has no text encoding to declare");
                }
                Contract::parse(&name, &text).unwrap_or_else(|error| panic!("{name}: {error}\n{text}"));
                drafted += 1;
            }
            Err(error) => assert!(error.to_string().contains(&key), "{name}: the error names the file: {error}"),
        }
    }
    assert!(drafted >= 35, "most corpus files are readable: {drafted}");
}
