//! The load stage through its Lambda handler, after the real ingest, validate and mask, into
//! the machine's real PostgreSQL (a database of its own per test) and into SQLite — the same
//! cases for both: SCD2 history across deliveries, back-dated changes, inferred members
//! completed later, as-of fact keys, idempotent reloads, and concurrent loads.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use lakestar::contract::Contract;
use lakestar::load::LoadOutput;
use lakestar::mask::MaskingKey;
use lakestar::run::RunDescriptor;
use lakestar::warehouse::Warehouse;
use lakestar_ingest::IngestFunction;
use lakestar_load::LoadFunction;
use lakestar_mask::MaskFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::LambdaEvent;

const CUSTOMER_HEADER: &str =
    "customer_id,first_name,last_name,email,phone,dob,postcode,city,segment,tier,updated_at\n";

fn customer(id: &str, city: &str, tier: &str, updated_at: &str) -> String {
    format!(
        "{id},Ann,Lee,{}@example.com,07700 900101,14/03/1985,LS1 4AP,{city},consumer,{tier},{updated_at}\n",
        id.to_lowercase()
    )
}

/// A customers file: the header and `rows`.
fn customers_csv(rows: &[String]) -> String {
    format!("{CUSTOMER_HEADER}{}", rows.concat())
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("time").with_timezone(&Utc)
}

struct Pipeline {
    lake: TestLake,
    contract: Contract,
    key: MaskingKey,
    warehouse: Warehouse,
}

impl Pipeline {
    async fn new(warehouse: Warehouse) -> Pipeline {
        Pipeline {
            lake: TestLake::start().await,
            contract: retail_contract(),
            key: MaskingKey::new(b"test-key-0123456789abcdef-0123456789".to_vec(), "v1").expect("key"),
            warehouse,
        }
    }

    /// Ingest, validate and mask a landed file; returns the state the load receives.
    async fn prepare(&self, dataset: &str, key: &str, bytes: &[u8], time: &str) -> serde_json::Value {
        self.lake.put(key, bytes).await;
        let run = RunDescriptor::new(dataset, BUCKET, key, None, Some("etag"), bytes.len() as u64, at(time));
        let mut state = serde_json::json!({ "run": run });
        let event = |state: &serde_json::Value| LambdaEvent::new(state.clone(), Default::default());
        let ingested = IngestFunction::new(self.lake.lake.clone(), self.contract.clone())
            .handle(event(&state))
            .await
            .expect("ingest");
        state["ingest"] = serde_json::to_value(ingested).expect("JSON");
        let validated = ValidateFunction::new(self.lake.lake.clone(), self.contract.clone())
            .handle(event(&state))
            .await
            .expect("validate");
        state["validate"] = serde_json::to_value(validated).expect("JSON");
        let masked = MaskFunction::new(self.lake.lake.clone(), self.contract.clone(), self.key.clone())
            .handle(event(&state))
            .await
            .expect("mask");
        state["mask"] = serde_json::to_value(masked).expect("JSON");
        state
    }

    async fn load(&self, state: &serde_json::Value) -> LoadOutput {
        LoadFunction::new(self.lake.lake.clone(), self.contract.clone(), self.warehouse.clone())
            .handle(LambdaEvent::new(state.clone(), Default::default()))
            .await
            .expect("load")
    }

    async fn try_load(&self, state: &serde_json::Value) -> Result<LoadOutput, lambda_runtime::Diagnostic> {
        LoadFunction::new(self.lake.lake.clone(), self.contract.clone(), self.warehouse.clone())
            .handle(LambdaEvent::new(state.clone(), Default::default()))
            .await
    }

    async fn deliver(&self, dataset: &str, key: &str, bytes: &[u8], time: &str) -> LoadOutput {
        let state = self.prepare(dataset, key, bytes, time).await;
        self.load(&state).await
    }

    /// `customer_id`, city, tier, valid_from, valid_to, current, inferred, key — by key and time.
    async fn customers(&self) -> Vec<Vec<Option<String>>> {
        let w = &self.warehouse;
        query_text(
            w,
            &format!(
                "SELECT customer_id, city, loyalty_tier, {}, {}, {}, {}, CAST(customer_key AS TEXT) FROM dim_customer ORDER BY customer_id, valid_from",
                instant_text(w, "valid_from"),
                instant_text(w, "valid_to"),
                flag_text(w, "is_current"),
                flag_text(w, "is_inferred"),
            ),
        )
        .await
    }
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// One current version per key and versions of a key that tile time without overlap.
fn assert_history_is_consistent(rows: &[Vec<Option<String>>]) {
    let mut by_key: std::collections::BTreeMap<String, Vec<&Vec<Option<String>>>> = Default::default();
    for row in rows {
        by_key.entry(row[0].clone().expect("key")).or_default().push(row);
    }
    for (key, versions) in by_key {
        let current = versions.iter().filter(|row| row[5].as_deref() == Some("1")).count();
        assert_eq!(current, 1, "{key}: one current version in {versions:?}");
        for pair in versions.windows(2) {
            assert_eq!(pair[0][4], pair[1][3], "{key}: each version ends where the next begins: {versions:?}");
        }
        assert_eq!(versions.last().and_then(|row| row[4].clone()), None, "{key}: the last version is open");
        assert_eq!(versions.last().and_then(|row| row[5].clone()).as_deref(), Some("1"), "{key}: the last is current");
    }
}

async fn scd_history_cases(pipeline: &Pipeline) {
    // Day 1: two customers.
    let day1 = customers_csv(&[
        customer("C1001", "Leeds", "gold", "2024-01-01T08:00:00"),
        customer("C1002", "Manchester", "silver", "2024-01-01T08:00:00"),
    ]);
    let loaded =
        pipeline.deliver("customers", "landing/d1/customers.csv", day1.as_bytes(), "2024-01-01T02:00:00Z").await;
    let counts = loaded.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (2, 0, 0));
    assert!(
        loaded.quality.starts_with("curated/_quality/customers/run=customers-") && loaded.quality.ends_with(".json")
    );

    // Day 2: C1001 moves (tracked, new version); C1002 changes tier (type 1, in place); C1003 is new.
    let day2 = customers_csv(&[
        customer("C1001", "York", "gold", "2024-01-02T09:00:00"),
        customer("C1002", "Manchester", "gold", "2024-01-02T09:00:00"),
        customer("C1003", "Hull", "bronze", "2024-01-02T09:00:00"),
    ]);
    let loaded =
        pipeline.deliver("customers", "landing/d2/customers.csv", day2.as_bytes(), "2024-01-02T02:00:00Z").await;
    let counts = loaded.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (1, 2, 0));
    let rows = pipeline.customers().await;
    let summary: Vec<_> = rows.iter().map(|row| row[..6].to_vec()).collect();
    assert_eq!(
        summary,
        [
            vec![
                text("C1001"),
                text("Leeds"),
                text("gold"),
                text("2024-01-01T08:00:00.000000Z"),
                text("2024-01-02T09:00:00.000000Z"),
                text("0")
            ],
            vec![text("C1001"), text("York"), text("gold"), text("2024-01-02T09:00:00.000000Z"), None, text("1")],
            vec![text("C1002"), text("Manchester"), text("gold"), text("2024-01-01T08:00:00.000000Z"), None, text("1")],
            vec![text("C1003"), text("Hull"), text("bronze"), text("2024-01-02T09:00:00.000000Z"), None, text("1")],
        ]
    );
    let keys: Vec<_> = rows.iter().map(|row| row[7].clone()).collect();
    assert_eq!(
        keys,
        [text("1"), text("3"), text("2"), text("4")],
        "surrogate keys in load order, natural key order within a load"
    );

    // Day 3, back-dated: C1001 at 20:00 on day 1 (inside the Leeds version: split it); C1002 in
    // December (before its first version: a new first version). Neither becomes current.
    let day3 = customers_csv(&[
        customer("C1001", "Wakefield", "gold", "2024-01-01T20:00:00"),
        customer("C1002", "Bradford", "silver", "2023-12-15T10:00:00"),
    ]);
    let state =
        pipeline.prepare("customers", "landing/d3/customers.csv", day3.as_bytes(), "2024-01-03T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    let counts = loaded.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 2, 0));
    let rows = pipeline.customers().await;
    let summary: Vec<_> = rows
        .iter()
        .map(|row| (row[0].clone(), row[1].clone(), row[3].clone(), row[4].clone(), row[5].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                text("C1001"),
                text("Leeds"),
                text("2024-01-01T08:00:00.000000Z"),
                text("2024-01-01T20:00:00.000000Z"),
                text("0")
            ),
            (
                text("C1001"),
                text("Wakefield"),
                text("2024-01-01T20:00:00.000000Z"),
                text("2024-01-02T09:00:00.000000Z"),
                text("0")
            ),
            (text("C1001"), text("York"), text("2024-01-02T09:00:00.000000Z"), None, text("1")),
            (
                text("C1002"),
                text("Bradford"),
                text("2023-12-15T10:00:00.000000Z"),
                text("2024-01-01T08:00:00.000000Z"),
                text("0")
            ),
            (text("C1002"), text("Manchester"), text("2024-01-01T08:00:00.000000Z"), None, text("1")),
            (text("C1003"), text("Hull"), text("2024-01-02T09:00:00.000000Z"), None, text("1")),
        ]
    );
    assert_history_is_consistent(&rows);

    // The same run again (a re-drive of a load that committed before its state was
    // recorded): nothing changes, and the load reports what the run did.
    let before = snapshot(&pipeline.warehouse).await;
    let again = pipeline.load(&state).await;
    assert_eq!(again.tables, loaded.tables);
    assert_eq!(snapshot(&pipeline.warehouse).await, before);
    // The same rows as another run: unchanged, and it says so.
    let repeat =
        pipeline.deliver("customers", "landing/d3b/customers.csv", day3.as_bytes(), "2024-01-03T03:00:00Z").await;
    let counts = repeat.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 0, 2));
    assert_eq!(snapshot(&pipeline.warehouse).await, before);

    // Rows written before the warehouse kept a hash of the type 1 columns: the database
    // compares them, finds nothing changed, and records the hash for next time.
    query_text(&pipeline.warehouse, "UPDATE dim_customer SET type1_hash = NULL").await;
    let day4 = customers_csv(&[
        customer("C1002", "Manchester", "gold", "2024-01-02T09:00:00"),
        customer("C1003", "Hull", "bronze", "2024-01-02T09:00:00"),
    ]);
    let refreshed =
        pipeline.deliver("customers", "landing/d4/customers.csv", day4.as_bytes(), "2024-01-04T02:00:00Z").await;
    let counts = refreshed.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 0, 2));
    let missing = query_text(
        &pipeline.warehouse,
        "SELECT customer_id FROM dim_customer WHERE type1_hash IS NULL AND valid_to IS NULL AND customer_id IN ('C1002', 'C1003')",
    )
    .await;
    assert!(missing.is_empty(), "the current versions of the delivered keys get their hash back: {missing:?}");

    // The quality report and the warehouse's own tables.
    let report: serde_json::Value = serde_json::from_slice(&pipeline.lake.get(&repeat.quality).await).expect("report");
    assert_eq!(report["received"], 2);
    assert_eq!(report["tables"]["dim_customer"]["unchanged"], 2);
    let metrics = query_text(
        &pipeline.warehouse,
        "SELECT metric, dimension, CAST(CAST(value AS INTEGER) AS TEXT) FROM quality_metrics WHERE metric IN ('rows_received', 'unchanged') ORDER BY metric",
    )
    .await;
    assert!(metrics.contains(&vec![text("rows_received"), text(""), text("2")]), "{metrics:?}");
    let audits = query_text(&pipeline.warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM load_audit").await;
    assert_eq!(audits, [vec![text("5")]], "one audit row per load of the table");
}

async fn fact_cases(pipeline: &Pipeline) {
    let customers = customers_csv(&[customer("C1001", "Leeds", "gold", "2024-01-01T08:00:00")]);
    pipeline.deliver("customers", "landing/d1/customers.csv", customers.as_bytes(), "2024-01-01T02:00:00Z").await;
    let moved = customers_csv(&[customer("C1001", "York", "gold", "2024-01-03T09:00:00")]);
    pipeline.deliver("customers", "landing/d3/customers.csv", moved.as_bytes(), "2024-01-03T02:00:00Z").await;

    // Sales for a known customer on either side of the move, and for a customer, a product
    // and a store no dimension has yet: inferred members.
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00001,1,2024-01-02,2024-01-02,C1001,P001,S01,2,1.85,,store\n\
                 O00002,1,2024-01-04,2024-01-04,C1001,P001,S01,1,1.85,,store\n\
                 O00003,1,2024-01-04,2024-01-05,C1099,P001,S01,3,2.50,,web\n";
    let state = pipeline.prepare("sales", "landing/d4/sales.csv", sales.as_bytes(), "2024-01-04T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    let counts = loaded.tables["fact_sales"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (3, 0, 0));
    assert_eq!(
        (
            loaded.tables["dim_customer"].inferred,
            loaded.tables["dim_product"].inferred,
            loaded.tables["dim_store"].inferred
        ),
        (1, 1, 1)
    );
    // The two sale dates, and the 3rd between them: the calendar has no gaps.
    assert_eq!(loaded.tables["dim_date"].inserted, 3);

    let keys = |order: &str| {
        format!(
            "SELECT c.customer_id, c.city, {} FROM fact_sales f JOIN dim_customer c ON c.customer_key = f.customer_key WHERE f.order_id = '{order}'",
            flag_text(&pipeline.warehouse, "c.is_inferred")
        )
    };
    assert_eq!(
        query_text(&pipeline.warehouse, &keys("O00001")).await,
        [vec![text("C1001"), text("Leeds"), text("0")]],
        "as of 2 January"
    );
    assert_eq!(
        query_text(&pipeline.warehouse, &keys("O00002")).await,
        [vec![text("C1001"), text("York"), text("0")]],
        "as of 4 January"
    );
    assert_eq!(
        query_text(&pipeline.warehouse, &keys("O00003")).await,
        [vec![text("C1099"), None, text("1")]],
        "inferred"
    );

    // Every fact's keys resolve, and dim_date covers every sale date.
    let dangling = dangling_fact_keys(&pipeline.warehouse).await;
    assert_eq!(dangling, [vec![text("0")]]);
    let inferred_key = query_text(
        &pipeline.warehouse,
        "SELECT CAST(customer_key AS TEXT) FROM dim_customer WHERE customer_id = 'C1099'",
    )
    .await;

    // The same run again: the load reports what it did and changes nothing.
    let before = snapshot(&pipeline.warehouse).await;
    let again = pipeline.load(&state).await;
    assert_eq!(again.tables, loaded.tables);
    assert_eq!(snapshot(&pipeline.warehouse).await, before);
    // The same sales as another run: unchanged.
    let repeat = pipeline.prepare("sales", "landing/d4b/sales.csv", sales.as_bytes(), "2024-01-04T03:00:00Z").await;
    let again = pipeline.load(&repeat).await;
    let counts = again.tables["fact_sales"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 0, 3));
    assert_eq!(again.tables["dim_customer"].inferred, 0);
    assert_eq!(snapshot(&pipeline.warehouse).await, before);

    // The real C1099 arrives: it completes the inferred member, keeping its surrogate key.
    let late = customers_csv(&[customer("C1099", "Leeds", "bronze", "2024-01-05T09:00:00")]);
    let loaded =
        pipeline.deliver("customers", "landing/d5/customers.csv", late.as_bytes(), "2024-01-05T02:00:00Z").await;
    assert_eq!(loaded.tables["dim_customer"].updated, 1);
    let completed = query_text(
        &pipeline.warehouse,
        &format!(
            "SELECT CAST(customer_key AS TEXT), city, {}, {} FROM dim_customer WHERE customer_id = 'C1099'",
            flag_text(&pipeline.warehouse, "is_inferred"),
            flag_text(&pipeline.warehouse, "is_current")
        ),
    )
    .await;
    assert_eq!(completed, [vec![inferred_key[0][0].clone(), text("Leeds"), text("0"), text("1")]]);
    assert_eq!(query_text(&pipeline.warehouse, &keys("O00003")).await, [vec![text("C1099"), text("Leeds"), text("0")]]);
    assert_history_is_consistent(&pipeline.customers().await);

    // Single sales against a dimension more than twice their size: only the named customers'
    // versions are read (staged keys), the known one keyed as of its date, the unknown one
    // inferred after the highest key the table has.
    let highest = "SELECT CAST(MAX(customer_key) AS TEXT) FROM dim_customer";
    let before: i64 =
        query_text(&pipeline.warehouse, highest).await[0][0].as_deref().unwrap_or("0").parse().unwrap_or(0);
    for (day, order, customer_id) in [(6, "O00010", "C1001"), (7, "O00011", "C2000")] {
        let sale = format!(
            "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
             {order},1,2024-01-0{day},2024-01-0{day},{customer_id},P001,S01,1,1.85,,store\n"
        );
        let key = format!("landing/d{day}/sales.csv");
        let state = pipeline.prepare("sales", &key, sale.as_bytes(), &format!("2024-01-0{day}T02:00:00Z")).await;
        assert_eq!(pipeline.load(&state).await.tables["fact_sales"].inserted, 1);
    }
    assert_eq!(query_text(&pipeline.warehouse, &keys("O00010")).await, [vec![text("C1001"), text("York"), text("0")]]);
    assert_eq!(query_text(&pipeline.warehouse, &keys("O00011")).await, [vec![text("C2000"), None, text("1")]]);
    let inferred = "SELECT CAST(customer_key AS TEXT) FROM dim_customer WHERE customer_id = 'C2000'";
    assert_eq!(query_text(&pipeline.warehouse, inferred).await, [vec![text(&(before + 1).to_string())]]);
    assert_eq!(dangling_fact_keys(&pipeline.warehouse).await, [vec![text("0")]]);
}

async fn concurrent_cases(pipeline: &Pipeline) {
    // Eight deliveries of the same customers, each moving them at another time, prepared one
    // by one and then loaded all at once in shuffled order.
    let cities = ["Leeds", "York", "Hull", "Bath", "Ely", "Wells", "Derby", "Truro"];
    let mut states = Vec::new();
    for (day, city) in cities.iter().enumerate() {
        let updated = format!("2024-02-{:02}T09:00:00", day + 1);
        let body =
            customers_csv(&[customer("C2001", city, "gold", &updated), customer("C2002", city, "gold", &updated)]);
        let time = format!("2024-02-{:02}T02:00:00Z", day + 1);
        states.push(
            pipeline.prepare("customers", &format!("landing/c{day}/customers.csv"), body.as_bytes(), &time).await,
        );
    }
    states.reverse();
    states.swap(1, 5);
    let function = LoadFunction::new(pipeline.lake.lake.clone(), pipeline.contract.clone(), pipeline.warehouse.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for state in states {
        let function = function.clone();
        tasks.spawn(async move { function.handle(LambdaEvent::new(state, Default::default())).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("concurrent load");
    }
    let rows = pipeline.customers().await;
    assert_eq!(rows.len(), 16, "eight versions per key: {rows:?}");
    assert_history_is_consistent(&rows);
    let current: Vec<_> = rows.iter().filter(|row| row[5].as_deref() == Some("1")).map(|row| row[1].clone()).collect();
    assert_eq!(
        current,
        [text("Truro"), text("Truro")],
        "the latest version is current, whatever order the loads ran in"
    );
}

async fn postgres() -> (PostgresDatabase, Warehouse) {
    let (database, url) = PostgresDatabase::create().await;
    (database, Warehouse::connect(&url).await.expect("connected"))
}

async fn sqlite(dir: &tempfile::TempDir) -> Warehouse {
    Warehouse::connect(&format!("sqlite://{}", dir.path().join("warehouse.db").display())).await.expect("connected")
}

#[tokio::test]
async fn postgres_keeps_scd2_history_with_back_dated_changes_and_reloads_idempotently() {
    let (database, warehouse) = postgres().await;
    scd_history_cases(&Pipeline::new(warehouse.clone()).await).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_keeps_scd2_history_with_back_dated_changes_and_reloads_idempotently() {
    let dir = tempfile::tempdir().expect("folder");
    scd_history_cases(&Pipeline::new(sqlite(&dir).await).await).await;
}

#[tokio::test]
async fn postgres_facts_look_keys_up_as_of_their_date_and_complete_inferred_members() {
    let (database, warehouse) = postgres().await;
    fact_cases(&Pipeline::new(warehouse.clone()).await).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_first_fact_load_builds_the_key_after_the_copy_unless_a_foreign_key_needs_it() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00001,1,2024-01-02,2024-01-02,C1001,P001,S01,2,1.85,,store\n\
                 O00001,2,2024-01-02,2024-01-02,C1001,P002,S01,1,3.10,,store\n";
    let state = pipeline.prepare("sales", "landing/d1/sales.csv", sales.as_bytes(), "2024-01-02T02:00:00Z").await;
    assert_eq!(pipeline.load(&state).await.tables["fact_sales"].inserted, 2);
    let key =
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'fact_sales'::regclass AND contype = 'p'";
    assert_eq!(query_text(&warehouse, key).await, [vec![text("PRIMARY KEY (order_id, line)")]]);

    // A table of the user's whose foreign key depends on that key: the key stays in place.
    query_text(&warehouse, "TRUNCATE fact_sales").await;
    query_text(
        &warehouse,
        "CREATE TABLE sale_returns (order_id TEXT, line BIGINT, FOREIGN KEY (order_id, line) REFERENCES fact_sales (order_id, line))",
    )
    .await;
    assert_eq!(pipeline.load(&state).await.tables["fact_sales"].inserted, 2);
    assert_eq!(query_text(&warehouse, key).await, [vec![text("PRIMARY KEY (order_id, line)")]]);
    let dependents = query_text(
        &warehouse,
        "SELECT CAST(COUNT(*) AS TEXT) FROM pg_constraint WHERE confrelid = 'fact_sales'::regclass",
    )
    .await;
    assert_eq!(dependents, [vec![text("1")]]);
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_loads_into_empty_tables_build_every_key_and_index_again() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    let indexes = "SELECT tablename || ': ' || indexdef FROM pg_indexes \
                   WHERE tablename IN ('dim_customer', 'dim_product', 'fact_sales') ORDER BY indexname";
    let expected = |tables: &[&str]| -> Vec<Vec<Option<String>>> {
        let all = [
            (
                "dim_customer",
                "CREATE UNIQUE INDEX dim_customer_cur ON public.dim_customer USING btree (customer_id) WHERE is_current",
            ),
            ("dim_customer", "CREATE UNIQUE INDEX dim_customer_pkey ON public.dim_customer USING btree (customer_key)"),
            (
                "dim_customer",
                "CREATE INDEX dim_customer_versions ON public.dim_customer USING btree (customer_id, valid_from)",
            ),
            (
                "dim_product",
                "CREATE UNIQUE INDEX dim_product_cur ON public.dim_product USING btree (product_id) WHERE is_current",
            ),
            ("dim_product", "CREATE UNIQUE INDEX dim_product_pkey ON public.dim_product USING btree (product_key)"),
            (
                "dim_product",
                "CREATE INDEX dim_product_versions ON public.dim_product USING btree (product_id, valid_from)",
            ),
            ("fact_sales", "CREATE INDEX fact_sales_customer_key_idx ON public.fact_sales USING btree (customer_key)"),
            ("fact_sales", "CREATE INDEX fact_sales_date_key_idx ON public.fact_sales USING btree (date_key)"),
            ("fact_sales", "CREATE UNIQUE INDEX fact_sales_pkey ON public.fact_sales USING btree (order_id, line)"),
            ("fact_sales", "CREATE INDEX fact_sales_product_key_idx ON public.fact_sales USING btree (product_key)"),
            ("fact_sales", "CREATE INDEX fact_sales_store_key_idx ON public.fact_sales USING btree (store_key)"),
        ];
        all.iter()
            .filter(|(table, _)| tables.contains(table))
            .map(|(table, definition)| vec![text(&format!("{table}: {definition}"))])
            .collect()
    };

    // A first customer delivery: copied into the empty dimension, its indexes built after.
    let day1 = customers_csv(&[
        customer("C1001", "Leeds", "gold", "2024-01-01T09:00:00Z"),
        customer("C1002", "York", "silver", "2024-01-01T09:00:00Z"),
    ]);
    let customers =
        pipeline.prepare("customers", "landing/d1/customers.csv", day1.as_bytes(), "2024-01-01T02:00:00Z").await;
    assert_eq!(pipeline.load(&customers).await.tables["dim_customer"].inserted, 2);
    // A first sale: its unknown product inferred into the empty dim_product (indexes set
    // aside and built again), the facts copied into the empty fact table.
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00001,1,2024-01-02,2024-01-02,C1001,P001,S01,2,1.85,,store\n";
    let state = pipeline.prepare("sales", "landing/d2/sales.csv", sales.as_bytes(), "2024-01-02T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    assert_eq!(loaded.tables["fact_sales"].inserted, 1);
    assert_eq!(loaded.tables["dim_product"].inferred, 1);
    assert_eq!(query_text(&warehouse, indexes).await, expected(&["dim_customer", "dim_product", "fact_sales"]));
    // Each was emptied in its load's transaction and copied into with FREEZE: every row is
    // written frozen (`HEAP_XMIN_FROZEN` in its header), so no later read sets hint bits.
    query_text(&warehouse, "CREATE EXTENSION IF NOT EXISTS pageinspect").await;
    for table in ["dim_customer", "dim_product", "fact_sales"] {
        let frozen = format!(
            "SELECT CAST(COUNT(*) AS TEXT), CAST(bool_and(t_infomask & 768 = 768) AS TEXT) \
             FROM heap_page_items(get_raw_page('{table}', 0))"
        );
        let expected_rows = if table == "dim_customer" { "2" } else { "1" };
        assert_eq!(query_text(&warehouse, &frozen).await, [vec![text(expected_rows), text("true")]], "{table}");
    }
    let constraints = "SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                       WHERE conrelid IN ('dim_customer'::regclass, 'dim_product'::regclass) AND contype = 'p' ORDER BY 1";
    assert_eq!(
        query_text(&warehouse, constraints).await,
        [vec![text("dim_customer PRIMARY KEY (customer_key)")], vec![text("dim_product PRIMARY KEY (product_key)")]]
    );
    // The fact's foreign keys (set aside with the keys they point at, and its own) are there
    // again, validated.
    let foreign_keys = "SELECT CAST(COUNT(*) AS TEXT), CAST(bool_and(convalidated) AS TEXT) FROM pg_constraint \
                        WHERE conrelid = 'fact_sales'::regclass AND contype = 'f'";
    assert_eq!(query_text(&warehouse, foreign_keys).await, [vec![text("4"), text("true")]]);

    // The next delivery goes through the merge, into a table with its indexes: the same ones.
    let day3 = customers_csv(&[customer("C1001", "Hull", "gold", "2024-01-03T09:00:00Z")]);
    let customers =
        pipeline.prepare("customers", "landing/d3/customers.csv", day3.as_bytes(), "2024-01-03T02:00:00Z").await;
    assert_eq!(pipeline.load(&customers).await.tables["dim_customer"].updated, 1);
    assert_eq!(query_text(&warehouse, indexes).await, expected(&["dim_customer", "dim_product", "fact_sales"]));

    // An append of more facts than a quarter of the table's: its foreign keys and key indexes
    // set aside and built again, validated; an orphan key would have failed the rebuild.
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00002,1,2024-01-04,2024-01-04,C1002,P001,S01,1,1.85,,store\n\
                 O00003,1,2024-01-05,2024-01-05,C1003,P002,S01,3,2.10,,web\n";
    let state = pipeline.prepare("sales", "landing/d4/sales.csv", sales.as_bytes(), "2024-01-05T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    assert_eq!((loaded.tables["fact_sales"].inserted, loaded.tables["dim_customer"].inferred), (2, 1));
    assert_eq!(query_text(&warehouse, indexes).await, expected(&["dim_customer", "dim_product", "fact_sales"]));
    assert_eq!(query_text(&warehouse, foreign_keys).await, [vec![text("4"), text("true")]]);
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_new_versions_are_copied_in_key_order_whatever_the_file_order() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    // Natural keys out of order in the file: the rows go into the table in key order (so its
    // indexes are built from sorted input), their keys given in natural-key order.
    let heap = "SELECT customer_id, CAST(customer_key AS TEXT) FROM dim_customer ORDER BY ctid";
    let day1 = customers_csv(&[
        customer("C1003", "Leeds", "gold", "2024-01-01T09:00:00Z"),
        customer("C1001", "York", "silver", "2024-01-01T09:00:00Z"),
        customer("C1002", "Hull", "gold", "2024-01-01T09:00:00Z"),
    ]);
    let loaded =
        pipeline.deliver("customers", "landing/d1/customers.csv", day1.as_bytes(), "2024-01-01T02:00:00Z").await;
    assert_eq!(loaded.tables["dim_customer"].inserted, 3);
    let keyed = |pairs: &[(&str, &str)]| -> Vec<Vec<Option<String>>> {
        pairs.iter().map(|(id, key)| vec![text(id), text(key)]).collect()
    };
    assert_eq!(query_text(&warehouse, heap).await, keyed(&[("C1001", "1"), ("C1002", "2"), ("C1003", "3")]));

    // A merge: two new customers (in reverse order) and a change of C1001; the new versions
    // follow the table's rows in key order, and each customer's history stays whole.
    let day2 = customers_csv(&[
        customer("C1005", "Selby", "gold", "2024-01-02T09:00:00Z"),
        customer("C1004", "Ripon", "gold", "2024-01-02T09:00:00Z"),
        customer("C1001", "Leeds", "gold", "2024-01-02T09:00:00Z"),
    ]);
    let loaded =
        pipeline.deliver("customers", "landing/d2/customers.csv", day2.as_bytes(), "2024-01-02T02:00:00Z").await;
    assert_eq!((loaded.tables["dim_customer"].inserted, loaded.tables["dim_customer"].updated), (2, 1));
    let rows = query_text(&warehouse, heap).await;
    let appended: Vec<Vec<Option<String>>> = rows.iter().skip(3).cloned().collect();
    assert_eq!(appended, keyed(&[("C1001", "4"), ("C1004", "5"), ("C1005", "6")]), "{rows:?}");
    assert_history_is_consistent(&pipeline.customers().await);
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_a_large_delivery_in_partly_sorted_order_lands_whole_in_key_order() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    // 3 000 customers: a long sorted run (sent as a slice of the curated batch), a run in
    // reverse and a short sorted run (both gathered row by row).
    let ids: Vec<u32> = (1_000..2_500).chain((3_000..4_000).rev()).chain(2_500..3_000).collect();
    let city = |id: u32| format!("Town{}", id % 997);
    let rows: Vec<String> =
        ids.iter().map(|&id| customer(&format!("C{id}"), &city(id), "gold", "2024-01-01T09:00:00Z")).collect();
    let loaded = pipeline
        .deliver("customers", "landing/d1/customers.csv", customers_csv(&rows).as_bytes(), "2024-01-01T02:00:00Z")
        .await;
    assert_eq!(loaded.tables["dim_customer"].inserted, 3_000);
    let heap = "SELECT customer_id, CAST(customer_key AS TEXT), city FROM dim_customer ORDER BY ctid";
    let expected: Vec<Vec<Option<String>>> = (1_000..4_000)
        .zip(1..)
        .map(|(id, key): (u32, u32)| vec![text(&format!("C{id}")), text(&key.to_string()), text(&city(id))])
        .collect();
    assert_eq!(query_text(&warehouse, heap).await, expected);
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_a_failed_rebuild_after_a_bulk_copy_leaves_the_table_as_it_was() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    let day1 = customers_csv(&[customer("C1001", "Leeds", "gold", "2024-01-01T09:00:00Z")]);
    let state =
        pipeline.prepare("customers", "landing/d1/customers.csv", day1.as_bytes(), "2024-01-01T02:00:00Z").await;
    pipeline.load(&state).await;
    // The user's own index, which the next first delivery breaks: two customers in one city.
    query_text(&warehouse, "TRUNCATE dim_customer").await;
    query_text(&warehouse, "CREATE UNIQUE INDEX one_customer_per_city ON dim_customer (city)").await;
    let day2 = customers_csv(&[
        customer("C1001", "York", "gold", "2024-01-02T09:00:00Z"),
        customer("C1002", "York", "silver", "2024-01-02T09:00:00Z"),
    ]);
    let state =
        pipeline.prepare("customers", "landing/d2/customers.csv", day2.as_bytes(), "2024-01-02T02:00:00Z").await;
    let error = format!("{:?}", pipeline.try_load(&state).await.expect_err("the user's unique index fails"));
    assert!(error.contains("building one_customer_per_city again after copying into the empty table"), "{error}");
    // Rolled back: the table is empty and has every key and index it had.
    assert_eq!(query_text(&warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer").await, [vec![text("0")]]);
    let indexes = "SELECT indexname FROM pg_indexes WHERE tablename = 'dim_customer' ORDER BY indexname";
    assert_eq!(
        query_text(&warehouse, indexes).await,
        ["dim_customer_cur", "dim_customer_pkey", "dim_customer_versions", "one_customer_per_city"]
            .map(|name| vec![text(name)])
    );
    database.drop_database(warehouse).await;
}

/// The natural-key text columns of the star tables and their collation.
const KEY_COLLATIONS: &str = "SELECT table_name || '.' || column_name, COALESCE(collation_name, 'default') \
     FROM information_schema.columns WHERE table_schema = current_schema() \
     AND (table_name, column_name) IN (('dim_customer', 'customer_id'), ('dim_product', 'product_id'), \
     ('dim_store', 'store_id'), ('fact_sales', 'order_id')) ORDER BY 1";

#[tokio::test]
async fn postgres_natural_keys_compare_bytewise_and_tables_made_before_load_as_well() {
    let collations = |collation: &str| -> Vec<Vec<Option<String>>> {
        ["dim_customer.customer_id", "dim_product.product_id", "dim_store.store_id", "fact_sales.order_id"]
            .map(|column| vec![text(column), text(collation)])
            .to_vec()
    };
    // New tables: the natural keys collate "C".
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    warehouse.ensure_tables(&pipeline.contract).await.expect("tables");
    assert_eq!(query_text(&warehouse, KEY_COLLATIONS).await, collations("C"));
    let customer_id = "SELECT COALESCE(collation_name, 'default') FROM information_schema.columns \
                       WHERE table_name = 'fact_sales' AND column_name = 'customer_id'";
    assert_eq!(query_text(&warehouse, customer_id).await, [vec![text("default")]], "a fact's reference is data");

    // Tables as an earlier Lakestar made them, natural keys in the database's collation: the
    // loads (staging tables, merges, as-of lookups, inferred members) work on them unchanged.
    // (Before the views and marts, which the change of a column's type would have to go through.)
    query_text(
        &warehouse,
        "DROP VIEW IF EXISTS fact_sales_detail, dim_customer_current, dim_product_current, dim_store_current",
    )
    .await;
    query_text(&warehouse, "DROP MATERIALIZED VIEW IF EXISTS sales_by_month, sales_by_segment").await;
    for column in collations("C") {
        let (table, column) = column[0].as_deref().and_then(|name| name.split_once('.')).expect("table.column");
        let alter = format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE \"default\"");
        query_text(&warehouse, &alter).await;
    }
    fact_cases(&pipeline).await;
    assert_eq!(query_text(&warehouse, KEY_COLLATIONS).await, collations("default"), "left as they were");
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn postgres_row_hashes_are_16_bytes_and_hex_hashes_of_tables_made_before_are_converted() {
    let (database, warehouse) = postgres().await;
    let pipeline = Pipeline::new(warehouse.clone()).await;
    let day1 = customers_csv(&[
        customer("C1001", "Leeds", "gold", "2024-01-01T08:00:00"),
        customer("C1002", "Manchester", "silver", "2024-01-01T08:00:00"),
    ]);
    let state =
        pipeline.prepare("customers", "landing/d1/customers.csv", day1.as_bytes(), "2024-01-01T02:00:00Z").await;
    pipeline.load(&state).await;
    const HASHES: &str = "SELECT customer_id, pg_typeof(row_hash)::text, pg_typeof(type1_hash)::text, \
         encode(row_hash, 'hex'), encode(type1_hash, 'hex') FROM dim_customer ORDER BY 1";
    let stored = query_text(&warehouse, HASHES).await;
    assert_eq!(stored.len(), 2);
    for row in &stored {
        assert_eq!((row[1].as_deref(), row[2].as_deref()), (Some("bytea"), Some("bytea")), "{row:?}");
        assert!(row[3..].iter().all(|hex| hex.as_ref().is_some_and(|hex| hex.len() == 32)), "16 bytes: {row:?}");
    }

    // The hashes as an earlier Lakestar stored them, 32 hex digits: the next load converts the
    // columns to the bytes the digits spell, and finds every row unchanged.
    query_text(
        &warehouse,
        "ALTER TABLE dim_customer ALTER COLUMN row_hash TYPE TEXT USING encode(row_hash, 'hex'), \
         ALTER COLUMN type1_hash TYPE TEXT USING encode(type1_hash, 'hex')",
    )
    .await;
    let again =
        pipeline.prepare("customers", "landing/d1b/customers.csv", day1.as_bytes(), "2024-01-01T03:00:00Z").await;
    let counts = pipeline.load(&again).await.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 0, 2));
    assert_eq!(query_text(&warehouse, HASHES).await, stored, "the same hashes, as bytes again");

    // And a change after the conversion is one.
    let day2 = customers_csv(&[customer("C1001", "York", "gold", "2024-01-02T09:00:00")]);
    let loaded =
        pipeline.deliver("customers", "landing/d2/customers.csv", day2.as_bytes(), "2024-01-02T02:00:00Z").await;
    let counts = loaded.tables["dim_customer"];
    assert_eq!((counts.inserted, counts.updated, counts.unchanged), (0, 1, 0));
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_facts_look_keys_up_as_of_their_date_and_complete_inferred_members() {
    let dir = tempfile::tempdir().expect("folder");
    fact_cases(&Pipeline::new(sqlite(&dir).await).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_eight_concurrent_loads_leave_one_current_row_per_key() {
    let (database, warehouse) = postgres().await;
    concurrent_cases(&Pipeline::new(warehouse.clone()).await).await;
    database.drop_database(warehouse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_eight_concurrent_loads_leave_one_current_row_per_key() {
    let dir = tempfile::tempdir().expect("folder");
    concurrent_cases(&Pipeline::new(sqlite(&dir).await).await).await;
}

#[test]
fn the_sample_load_event_is_the_state_the_load_stage_reads() {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/load.json")).expect("events/load.json");
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    let input = lakestar::state::State::from_value(value).expect("a state document");
    assert!(input.validate().is_ok());
    let masked = input.mask.expect("a mask section");
    assert!(masked.tables.contains_key("dim_customer"), "{:?}", masked.tables);
    assert!(masked.manifest.starts_with("curated/_manifests/dim_customer/run="), "{}", masked.manifest);
}

/// Issue 24.5: the RDS-managed secret rotates every 7 days. When the warehouse refuses the
/// credentials (SQLSTATE 28P01), the load reads the secret again, connects again and tries
/// once more: changing the role's password and the secret mid-run loses nothing.
#[tokio::test]
async fn a_rotated_database_password_is_read_again_and_the_load_goes_on() {
    use lakestar::function::{ContractSource, Resources, StageFunction, WarehouseSource};
    let (database, _) = PostgresDatabase::create().await;
    let name = database.name().to_string();
    let admin = sqlx::PgPool::connect(common::ADMIN_URL).await.expect("admin");
    let exec = |statement: String| {
        let admin = admin.clone();
        async move { sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&admin).await.expect("admin statement") }
    };
    exec(
        "DO $$ BEGIN CREATE ROLE lakestar_rotation LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            .to_string(),
    )
    .await;
    exec("ALTER ROLE lakestar_rotation PASSWORD 'first-password'".to_string()).await;
    exec(format!("ALTER DATABASE \"{name}\" OWNER TO lakestar_rotation")).await;
    let wrong = format!("postgres://lakestar_rotation:not-the-password@127.0.0.1:5432/{name}");
    assert!(
        sqlx::PgPool::connect(&wrong).await.is_err(),
        "the role must give its password: run .ci/postgres-password-role.sh (bash .ci/run does)"
    );

    let moto = Moto::start();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("t", "t", None, None, "t"))
        .build();
    let secrets = aws_sdk_secretsmanager::Client::from_conf(config);
    let secret = |password: &str| {
        serde_json::json!({"username": "lakestar_rotation", "password": password, "host": "127.0.0.1", "port": 5432, "dbname": name})
            .to_string()
    };
    secrets.create_secret().name("rds-master").secret_string(secret("first-password")).send().await.expect("secret");

    // The pipeline's own warehouse is not used: the load's comes from the secret.
    let scratch = tempfile::tempdir().expect("folder");
    let pipeline = Pipeline::new(sqlite(&scratch).await).await;
    let context = lakestar::stage::StageContext::new(pipeline.lake.lake.clone(), pipeline.contract.clone());
    let source = WarehouseSource::Secret {
        client: secrets.clone(),
        secret_id: "rds-master".to_string(),
        environment: Box::new(lakestar::config::Environment::default()),
        cached: Default::default(),
    };
    let resources =
        Resources::new(pipeline.lake.lake.clone(), ContractSource::Fixed(pipeline.contract.clone()), &context)
            .with_warehouse(source);
    let load = StageFunction::with_resources(lakestar::stage::Stage::Load, resources);
    let invoke = |state: serde_json::Value| load.handle(LambdaEvent::new(state, Default::default()));

    let first = pipeline
        .prepare(
            "customers",
            "landing/2024-01-01/customers.csv",
            &example_file("2024-01-01/customers.csv"),
            "2024-01-01T02:00:00Z",
        )
        .await;
    invoke(first).await.expect("the first load, with the first password");

    // The secret rotates: new password, the old connections gone.
    exec("ALTER ROLE lakestar_rotation PASSWORD 'second-password'".to_string()).await;
    secrets
        .put_secret_value()
        .secret_id("rds-master")
        .secret_string(secret("second-password"))
        .send()
        .await
        .expect("rotated");
    exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'lakestar_rotation'".to_string())
        .await;

    let second = pipeline
        .prepare(
            "customers",
            "landing/2024-01-02/customers.csv",
            &example_file("2024-01-02/customers.csv"),
            "2024-01-02T02:00:00Z",
        )
        .await;
    let output = invoke(second).await.expect("the load after the rotation, with the secret read again");
    assert!(output.into_load().is_ok());
    drop(load);
    let check = Warehouse::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}")).await.expect("pg");
    let versions = query_text(&check, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer").await;
    assert_eq!(versions, [vec![Some("9".to_string())]], "both deliveries loaded");
    database.drop_database(check).await;
}

/// Issue 26: a warehouse check of the contract's runs inside the load's transaction; one that
/// counts offending rows rolls the whole load back and fails naming the check and the count;
/// the same rows load once the check holds.
async fn warehouse_check_cases(warehouse: Warehouse) {
    let mut pipeline = Pipeline::new(warehouse).await;
    let with_severity = |sql: &str, severity: &str| {
        let text = common::RETAIL_CONTRACT.replacen(
            "[[datasets.sales.rules]]",
            &format!(
                "[[datasets.sales.quality.warehouse]]\nname = \"no_bulk_lines\"\nsql = \"{sql}\"\nseverity = \"{severity}\"\n\n[[datasets.sales.rules]]"
            ),
            1,
        );
        Contract::parse("pipeline.toml", &text).expect("valid")
    };
    pipeline.contract = with_severity("SELECT count(*) FROM fact_sales WHERE quantity > 2", "fail");
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00001,1,2024-01-02,2024-01-02,C1001,P001,S01,2,1.85,,store\n\
                 O00002,1,2024-01-04,2024-01-04,C1001,P001,S01,3,1.85,,store\n\
                 O00003,1,2024-01-04,2024-01-05,C1099,P001,S01,5,2.50,,web\n";
    let state = pipeline.prepare("sales", "landing/d4/sales.csv", sales.as_bytes(), "2024-01-04T02:00:00Z").await;
    let error = pipeline.try_load(&state).await.expect_err("the check fails");
    assert_eq!(error.error_type, "QualityGateFailed");
    assert!(
        error.error_message.contains(
            "the warehouse check `no_bulk_lines` counted 2 offending row(s) after the load, which was rolled back"
        ),
        "{}",
        error.error_message
    );
    // Nothing of the load stayed: no facts, no inferred members, no audit row.
    let w = &pipeline.warehouse;
    assert_eq!(query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM fact_sales").await, [[text("0")]]);
    assert_eq!(query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer").await, [[text("0")]]);
    assert_eq!(query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM load_audit").await, [[text("0")]]);

    // The check made a warning, a re-drive of the load loads the run and reports it.
    pipeline.contract = with_severity("SELECT count(*) FROM fact_sales WHERE quantity > 2", "warn");
    let loaded = pipeline.load(&state).await;
    assert_eq!(loaded.tables["fact_sales"].inserted, 3);
    assert_eq!(loaded.warnings, ["warehouse check no_bulk_lines: 2 offending row(s) after the load"]);
    let report: serde_json::Value =
        serde_json::from_slice(&pipeline.lake.get(&loaded.quality).await).expect("the quality report");
    assert_eq!(report["status"], "SUCCEEDED_WITH_WARNINGS");
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(warnings.contains(&serde_json::json!(loaded.warnings[0])), "{warnings:?}");
    let warned = query_text(
        &pipeline.warehouse,
        "SELECT dimension FROM quality_metrics WHERE metric = 'rule_warned' AND dimension LIKE 'warehouse%'",
    )
    .await;
    assert_eq!(warned, [[text("warehouse check no_bulk_lines")]]);
    // Loaded again (a re-drive after the commit), the warning is reported again.
    let again = pipeline.load(&state).await;
    assert_eq!(again.warnings, loaded.warnings);
}

#[tokio::test]
async fn postgres_a_failing_warehouse_check_rolls_the_load_back() {
    let (database, warehouse) = postgres().await;
    warehouse_check_cases(warehouse.clone()).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_a_failing_warehouse_check_rolls_the_load_back() {
    let dir = tempfile::tempdir().expect("folder");
    warehouse_check_cases(sqlite(&dir).await).await;
}

/// Issue 26: `on_missing = "fail"` on a reference rolls the load back when a fact names a
/// member the dimension lacks, naming the dimension and how many keys (never the keys);
/// `quarantine` sets the facts naming a missing member aside, the key in their reason.
async fn on_missing_cases(warehouse: Warehouse) {
    let mut pipeline = Pipeline::new(warehouse).await;
    let with = |mode: &str| {
        common::RETAIL_CONTRACT.replacen(
            r#"{ dimension = "dim_store", columns = ["store_id"] },"#,
            &format!(r#"{{ dimension = "dim_store", columns = ["store_id"], on_missing = "{mode}" }},"#),
            1,
        )
    };
    pipeline.contract = Contract::parse("pipeline.toml", &with("fail")).expect("valid");
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00001,1,2024-01-02,2024-01-02,C1001,P001,S01,2,1.85,,store\n\
                 O00002,1,2024-01-04,2024-01-04,C1001,P001,S02,3,1.85,,store\n";
    let state = pipeline.prepare("sales", "landing/d4/sales.csv", sales.as_bytes(), "2024-01-04T02:00:00Z").await;
    let error = pipeline.try_load(&state).await.expect_err("the stores are missing");
    assert_eq!(error.error_type, "QualityGateFailed");
    assert!(
        error.error_message.contains("the facts name 2 store_id value(s) that dim_store lacks (on_missing = \"fail\")"),
        "{}",
        error.error_message
    );
    assert!(!error.error_message.contains("S01"), "keys are never in the message: {}", error.error_message);
    let w = &pipeline.warehouse;
    assert_eq!(query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM fact_sales").await, [[text("0")]]);
    assert_eq!(query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer").await, [[text("0")]]);

    // The stores loaded first, the re-drive of the load loads the facts.
    let stores = r#"[
  {"id": "S01", "name": "Leeds", "address": {"city": "Leeds", "postcode": "LS1 6HT"}, "manager": {"email": "a@example.com"}, "opened": "2015-04-01", "size": {"floor_area_m2": 900}},
  {"id": "S02", "name": "York", "address": {"city": "York", "postcode": "YO1 8AS"}, "manager": {"email": "b@example.com"}, "opened": "2016-04-01", "size": {"floor_area_m2": 140}}
]"#;
    pipeline.deliver("stores", "landing/d1/stores.json", stores.as_bytes(), "2024-01-01T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    assert_eq!(loaded.tables["fact_sales"].inserted, 2);
    assert_eq!(loaded.tables["dim_store"].inferred, 0);

    // `quarantine`: the fact naming a store the dimension lacks is set aside, the key in its
    // reason; the others load, and no member is inferred.
    pipeline.contract = Contract::parse("pipeline.toml", &with("quarantine")).expect("valid");
    let sales = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
                 O00003,1,2024-01-05,2024-01-05,C1001,P001,S01,2,1.85,,store\n\
                 O00004,1,2024-01-05,2024-01-05,C1001,P001,S09,1,1.85,,store\n\
                 O00005,1,2024-01-05,2024-01-05,C1001,P001,S02,1,1.85,,web\n";
    let state = pipeline.prepare("sales", "landing/d5/sales.csv", sales.as_bytes(), "2024-01-05T02:00:00Z").await;
    let loaded = pipeline.load(&state).await;
    assert_eq!(loaded.tables["fact_sales"].inserted, 2, "{:?}", loaded.tables);
    assert_eq!(loaded.tables["fact_sales"].quarantined, 1);
    assert_eq!(loaded.tables["dim_store"].quarantined, 1);
    assert_eq!(loaded.tables["dim_store"].inferred, 0);
    let w = &pipeline.warehouse;
    assert_eq!(
        query_text(w, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_store WHERE store_id = 'S09'").await,
        [[text("0")]]
    );
    assert_eq!(
        query_text(
            w,
            "SELECT order_id FROM fact_sales WHERE order_id IN ('O00003', 'O00004', 'O00005') ORDER BY order_id"
        )
        .await,
        [[text("O00003")], [text("O00005")]]
    );
    let report: serde_json::Value = serde_json::from_slice(&pipeline.lake.get(&loaded.quality).await).expect("report");
    assert_eq!(
        (report["received"].as_u64(), report["valid"].as_u64(), report["rejected"].as_u64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(report["rejects_per_rule"]["store_id:member_missing(dim_store)"], 1, "{report}");
    let key = report["quarantine_at_load"].as_str().expect("the load's quarantine").to_string();
    let batches = read_parquet(pipeline.lake.get(&key).await);
    assert_eq!(text_column(&batches, "_reasons"), [text("store_id:member_missing(dim_store)=S09")]);
    assert_eq!(text_column(&batches, "order_id"), [text("O00004")]);
    // Loaded again (a re-drive after the commit): the same counts, the same quarantine.
    let again = pipeline.load(&state).await;
    assert_eq!(again.tables, loaded.tables);
    let report: serde_json::Value = serde_json::from_slice(&pipeline.lake.get(&again.quality).await).expect("report");
    assert_eq!(report["rejected"], 1);
    assert_eq!(text_column(&read_parquet(pipeline.lake.get(&key).await), "order_id"), [text("O00004")]);
}

#[tokio::test]
async fn postgres_on_missing_fail_rolls_the_load_back() {
    let (database, warehouse) = postgres().await;
    on_missing_cases(warehouse.clone()).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_on_missing_fail_rolls_the_load_back() {
    let dir = tempfile::tempdir().expect("folder");
    on_missing_cases(sqlite(&dir).await).await;
}
