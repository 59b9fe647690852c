//! The star schema's DDL, generated from the contract: dimension and fact tables with
//! validated, quoted identifiers, in PostgreSQL's or SQLite's dialect, and the additive
//! evolution of existing tables.

use arrow::datatypes::DataType as ArrowType;

use crate::contract::{
    Aggregate, AsOf, CALENDAR_ATTRIBUTES, Contract, Dataset, Mart, TableKind, attribute_name, is_identifier,
};
use crate::{Error, Result};

/// The SQL dialect of a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (RDS in the cloud).
    Postgres,
    /// SQLite (the offline default).
    Sqlite,
}

/// A double-quoted identifier; only contract-validated identifiers get here.
pub fn quote(identifier: &str) -> Result<String> {
    if is_identifier(identifier) || identifier.starts_with('_') && is_identifier(&identifier[1..]) {
        Ok(format!("\"{identifier}\""))
    } else {
        Err(Error::Internal(format!("`{identifier}` is not a valid identifier; it never reaches SQL")))
    }
}

/// The surrogate key column of a dimension: `dim_customer` → `customer_key`.
pub fn surrogate_key(dimension: &str) -> String {
    format!("{}_key", dimension.strip_prefix("dim_").unwrap_or(dimension))
}

/// A column of a star table: its name and SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: String,
    /// Its SQL type in the dialect.
    pub sql_type: String,
}

/// The SQL type of an Arrow type. Decimals are `NUMERIC(p,s)` in both dialects: exact in
/// PostgreSQL; in SQLite the declared type gives them numeric affinity, so they sort and add
/// as numbers (SQLite keeps 15 significant digits of them; the lake and PostgreSQL keep every
/// digit). SQLite keeps dates and timestamps as ISO text, which orders like the values.
pub fn sql_type(data_type: &ArrowType, dialect: Dialect) -> String {
    let postgres = dialect == Dialect::Postgres;
    match data_type {
        ArrowType::Int64 | ArrowType::Int32 => if postgres { "BIGINT" } else { "INTEGER" }.to_string(),
        ArrowType::Float64 => if postgres { "DOUBLE PRECISION" } else { "REAL" }.to_string(),
        ArrowType::Boolean => if postgres { "BOOLEAN" } else { "INTEGER" }.to_string(),
        ArrowType::Decimal128(precision, scale) => format!("NUMERIC({precision},{scale})"),
        ArrowType::Date32 if postgres => "DATE".to_string(),
        ArrowType::Timestamp(_, _) if postgres => "TIMESTAMPTZ".to_string(),
        _ => "TEXT".to_string(),
    }
}

/// The SQL type of a dimension's row hashes: their 16 bytes in PostgreSQL (half the 32 hex
/// digits' width, sent and read without formatting), the hex digits in SQLite.
pub fn hash_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "BYTEA",
        Dialect::Sqlite => "TEXT",
    }
}

/// The columns of a dataset's star table, in order, lineage and bookkeeping included.
pub fn table_columns(dataset: &Dataset, contract: &Contract, dialect: Dialect) -> Result<Vec<ColumnDef>> {
    let column = |name: &str, sql_type: &str| ColumnDef { name: name.to_string(), sql_type: sql_type.to_string() };
    let timestamp = if dialect == Dialect::Postgres { "TIMESTAMPTZ" } else { "TEXT" };
    let boolean = if dialect == Dialect::Postgres { "BOOLEAN" } else { "INTEGER" };
    let key_type = if dialect == Dialect::Postgres { "BIGINT" } else { "INTEGER" };
    let mut columns = Vec::new();
    if dataset.table.kind == TableKind::Dimension {
        columns.push(column(&surrogate_key(&dataset.table.name), key_type));
    } else {
        for reference in &dataset.table.references {
            if contract.datasets.iter().any(|other| other.table.name == reference.dimension) {
                columns.push(column(&surrogate_key(&reference.dimension), key_type));
            }
        }
        if dataset.table.date_column.is_some() {
            columns.push(column("date_key", "INTEGER"));
        }
    }
    for field in crate::lake::schema::curated_fields(dataset) {
        columns.push(ColumnDef { name: field.name().clone(), sql_type: sql_type(field.data_type(), dialect) });
    }
    if dataset.table.kind == TableKind::Dimension {
        columns.push(column("row_hash", hash_type(dialect)));
        columns.push(column("type1_hash", hash_type(dialect)));
        columns.push(column("valid_from", timestamp));
        columns.push(column("valid_to", timestamp));
        columns.push(column("is_current", boolean));
        columns.push(column("is_inferred", boolean));
        columns.push(column("type1_from", timestamp));
    }
    columns.push(column("run_id", "TEXT"));
    Ok(columns)
}

/// The natural key's star-table column names, quoted.
pub fn natural_key_columns(dataset: &Dataset) -> Result<Vec<String>> {
    dataset
        .table
        .natural_key
        .iter()
        .map(|name| dataset.column(name).map_or(name.as_str(), |column| column.target_name()))
        .map(quote)
        .collect()
}

/// `CREATE TABLE IF NOT EXISTS` and its indexes for a dataset's star table.
///
/// On PostgreSQL the natural key's text columns compare bytewise (`COLLATE "C"`): every key
/// index build, unique check and index lookup of a load compares them, a third faster than
/// under a libc locale such as `C.UTF-8` (more under `en_US.UTF-8`, RDS's default), and the
/// index order is the byte order the load sorts new versions in. Equality is the same under
/// every deterministic collation. Staging tables keep the default collation, which yields to
/// a column's own in a comparison, so tables made before keep their indexes in use.
pub fn create_table(dataset: &Dataset, contract: &Contract, dialect: Dialect) -> Result<Vec<String>> {
    let table = quote(&dataset.table.name)?;
    let columns = table_columns(dataset, contract, dialect)?;
    let natural_key = natural_key_columns(dataset)?;
    let mut definitions = Vec::with_capacity(columns.len() + 1);
    for (index, column) in columns.iter().enumerate() {
        let mut definition = format!("{} {}", quote(&column.name)?, column.sql_type);
        if dialect == Dialect::Postgres && column.sql_type == "TEXT" && natural_key.contains(&quote(&column.name)?) {
            definition.push_str(" COLLATE \"C\"");
        }
        if index == 0 && dataset.table.kind == TableKind::Dimension {
            definition = match dialect {
                Dialect::Postgres => {
                    format!("{} BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", quote(&column.name)?)
                }
                Dialect::Sqlite => format!("{} INTEGER PRIMARY KEY AUTOINCREMENT", quote(&column.name)?),
            };
        }
        definitions.push(definition);
    }
    let mut statements = Vec::new();
    match dataset.table.kind {
        TableKind::Fact => {
            definitions.push(format!("PRIMARY KEY ({})", natural_key.join(", ")));
            statements.push(format!("CREATE TABLE IF NOT EXISTS {table} (\n    {}\n)", definitions.join(",\n    ")));
        }
        TableKind::Dimension => {
            statements.push(format!("CREATE TABLE IF NOT EXISTS {table} (\n    {}\n)", definitions.join(",\n    ")));
            statements.push(current_index(dataset, dialect)?);
        }
    }
    statements.extend(indexes(dataset, contract)?);
    Ok(statements)
}

/// A fact's keys into its dimensions and `dim_date` (the columns a fact table has for them).
pub fn dimension_keys(dataset: &Dataset, contract: &Contract) -> Vec<(String, String)> {
    if dataset.table.kind != TableKind::Fact {
        return Vec::new();
    }
    let mut keys: Vec<(String, String)> = dataset
        .table
        .references
        .iter()
        .filter(|reference| contract.datasets.iter().any(|other| other.table.name == reference.dimension))
        .map(|reference| (surrogate_key(&reference.dimension), reference.dimension.clone()))
        .collect();
    if dataset.table.date_column.is_some() {
        keys.push(("date_key".to_string(), "dim_date".to_string()));
    }
    keys.dedup();
    keys
}

/// A fact's foreign keys into its dimensions and `dim_date` (PostgreSQL), as (name,
/// definition): `<fact>_<key>_fk`. The one into `dim_date` is checked at commit: a load adds
/// the dates its facts fall on after the facts.
pub fn foreign_keys(dataset: &Dataset, contract: &Contract) -> Result<Vec<(String, String)>> {
    dimension_keys(dataset, contract)
        .into_iter()
        .map(|(key, dimension)| {
            let name = format!("{}_{key}_fk", dataset.table.name);
            let key = quote(&key)?;
            let deferred = if dimension == "dim_date" { " DEFERRABLE INITIALLY DEFERRED" } else { "" };
            Ok((name, format!("FOREIGN KEY ({key}) REFERENCES {} ({key}){deferred}", quote(&dimension)?)))
        })
        .collect()
}

/// A dimension's unique index of current versions: `<dim>_cur`.
pub fn current_index_name(table: &str) -> String {
    format!("{table}_cur")
}

/// The name that index had before `<dim>_current` became the dimension's view.
pub fn legacy_current_index_name(table: &str) -> String {
    format!("{table}_current")
}

/// One current version per natural key, whatever loads run at once.
pub fn current_index(dataset: &Dataset, dialect: Dialect) -> Result<String> {
    let current = if dialect == Dialect::Postgres { "is_current" } else { "is_current = 1" };
    Ok(format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({}) WHERE {current}",
        quote(&current_index_name(&dataset.table.name))?,
        quote(&dataset.table.name)?,
        natural_key_columns(dataset)?.join(", ")
    ))
}

/// The columns Lakestar keeps a dimension's history with, which its current view leaves out.
const BOOKKEEPING: [&str; 8] =
    ["row_hash", "type1_hash", "valid_from", "valid_to", "is_current", "is_inferred", "type1_from", "run_id"];

/// The view of a star table, as (name, query):
/// - a dimension's `<dim>_current`: its current versions, with the surrogate key and the
///   contract's columns, without the columns Lakestar keeps history with;
/// - a fact's `<fact>_detail`: every fact with the attributes of the versions its keys name
///   (those in effect at the fact's date), each as `<dimension stem>_<column>`, and its
///   calendar attributes as `date_<attribute>`; without surrogate keys.
pub fn view(dataset: &Dataset, contract: &Contract, dialect: Dialect) -> Result<(String, String)> {
    let table = &dataset.table.name;
    match dataset.table.kind {
        TableKind::Dimension => {
            let columns: Vec<String> = table_columns(dataset, contract, dialect)?
                .into_iter()
                .filter(|column| !BOOKKEEPING.contains(&column.name.as_str()))
                .map(|column| quote(&column.name))
                .collect::<Result<_>>()?;
            let current = if dialect == Dialect::Postgres { "\"is_current\"" } else { "\"is_current\" = 1" };
            let name = format!("{table}_current");
            let query = format!("SELECT {} FROM {} WHERE {current}", columns.join(", "), quote(table)?);
            Ok((name, query))
        }
        TableKind::Fact => {
            let mut names: Vec<String> = Vec::new();
            let mut select = Vec::new();
            for column in table_columns(dataset, contract, dialect)? {
                if column.name.ends_with("_key") || column.name == "run_id" {
                    continue;
                }
                select.push(format!("f.{}", quote(&column.name)?));
                names.push(column.name);
            }
            let mut joins = Vec::new();
            let references =
                dataset.table.references.iter().filter_map(|reference| {
                    contract.datasets.iter().find(|other| other.table.name == reference.dimension)
                });
            for (index, dimension) in references.enumerate() {
                let alias = format!("r{index}");
                let key = quote(&surrogate_key(&dimension.table.name))?;
                let stem = dimension.table.name.strip_prefix("dim_").unwrap_or(&dimension.table.name);
                let natural: Vec<String> = natural_key_columns(dimension)?;
                for column in table_columns(dimension, contract, dialect)? {
                    let quoted = quote(&column.name)?;
                    if BOOKKEEPING.contains(&column.name.as_str())
                        || column.name.ends_with("_key")
                        || natural.contains(&quoted)
                    {
                        continue;
                    }
                    let mut name = attribute_name(&dimension.table.name, &column.name);
                    if names.contains(&name) {
                        name = format!("{stem}_{}", column.name);
                    }
                    while names.contains(&name) {
                        name.push_str("_2");
                    }
                    select.push(format!("{alias}.{quoted} AS {}", quote(&name)?));
                    names.push(name);
                }
                joins.push(format!("LEFT JOIN {} {alias} ON {alias}.{key} = f.{key}", quote(&dimension.table.name)?));
            }
            if dataset.table.date_column.is_some() {
                // The fact shows its date already.
                for attribute in &CALENDAR_ATTRIBUTES[1..] {
                    let mut name = format!("date_{attribute}");
                    while names.contains(&name) {
                        name.push_str("_2");
                    }
                    select.push(format!("d.{} AS {}", quote(attribute)?, quote(&name)?));
                    names.push(name);
                }
                joins.push("LEFT JOIN \"dim_date\" d ON d.\"date_key\" = f.\"date_key\"".to_string());
            }
            let name = format!("{table}_detail");
            let query = format!("SELECT {} FROM {} f {}", select.join(", "), quote(table)?, joins.join(" "));
            Ok((name, query))
        }
    }
}

/// A mart's query: the fact's measures grouped by its columns and attributes, each
/// dimension's from the version the fact's key names (`as_of = "fact_date"`) or from the
/// member's current version (`as_of = "current"`).
pub fn mart_query(mart: &Mart, contract: &Contract) -> Result<String> {
    let mut select = Vec::new();
    let mut joins: Vec<(String, String)> = Vec::new();
    for group in &mart.group_by {
        let alias = match group.table.as_deref() {
            None => "f".to_string(),
            Some("dim_date") => {
                if !joins.iter().any(|(table, _)| table == "dim_date") {
                    joins.push((
                        "dim_date".to_string(),
                        "LEFT JOIN \"dim_date\" d ON d.\"date_key\" = f.\"date_key\"".to_string(),
                    ));
                }
                "d".to_string()
            }
            Some(table) => {
                let position = match joins.iter().position(|(joined, _)| joined == table) {
                    Some(position) => position,
                    None => {
                        joins.push((table.to_string(), dimension_join(table, joins.len(), mart.as_of, contract)?));
                        joins.len() - 1
                    }
                };
                let alias = format!("r{position}");
                if mart.as_of == AsOf::Current { format!("c{position}") } else { alias }
            }
        };
        select.push(format!("{alias}.{} AS {}", quote(&group.column)?, quote(&group.name)?));
    }
    for measure in &mart.measures {
        let column = measure.column.as_deref().map(|column| quote(column).map(|quoted| format!("f.{quoted}")));
        let argument = column.transpose()?.unwrap_or_else(|| "*".to_string());
        let aggregate = match measure.function {
            Aggregate::Count => format!("COUNT({argument})"),
            Aggregate::CountDistinct => format!("COUNT(DISTINCT {argument})"),
            Aggregate::Sum => format!("SUM({argument})"),
            Aggregate::Avg => format!("AVG({argument})"),
            Aggregate::Min => format!("MIN({argument})"),
            Aggregate::Max => format!("MAX({argument})"),
        };
        select.push(format!("{aggregate} AS {}", quote(&measure.name)?));
    }
    let positions: Vec<String> = (1..=mart.group_by.len()).map(|position| position.to_string()).collect();
    let joins: Vec<String> = joins.into_iter().map(|(_, join)| join).collect();
    Ok(format!(
        "SELECT {} FROM {} f {} GROUP BY {}",
        select.join(", "),
        quote(&mart.fact)?,
        joins.join(" "),
        positions.join(", ")
    ))
}

/// The join of a dimension into a mart's query, as `r<position>` (the version the fact's
/// key names) and, for current attributes, `c<position>` (the member's current version).
fn dimension_join(table: &str, position: usize, as_of: AsOf, contract: &Contract) -> Result<String> {
    let key = quote(&surrogate_key(table))?;
    let quoted = quote(table)?;
    let mut join = format!("LEFT JOIN {quoted} r{position} ON r{position}.{key} = f.{key}");
    if as_of == AsOf::Current {
        let dimension = contract
            .dataset_of_table(table)
            .ok_or_else(|| Error::Internal(format!("the mart's dimension `{table}` has no dataset")))?;
        let matches: Vec<String> = natural_key_columns(dimension)?
            .iter()
            .map(|column| format!("c{position}.{column} = r{position}.{column}"))
            .collect();
        join.push_str(&format!(
            " LEFT JOIN {quoted} c{position} ON {} AND c{position}.\"is_current\"",
            matches.join(" AND ")
        ));
    }
    Ok(join)
}

/// The name of a mart's unique index over its group-by columns.
pub fn mart_index_name(mart: &str) -> String {
    format!("{mart}_key")
}

/// The indexes the loads and readers rely on besides the keys: a dimension's versions by
/// natural key and time, for the as-of lookups of facts; a fact's key into each dimension.
pub fn indexes(dataset: &Dataset, contract: &Contract) -> Result<Vec<String>> {
    if dataset.table.kind == TableKind::Fact {
        // A fact's key into each dimension, for the joins of the views and marts and for
        // the re-keying of facts when a dimension's history changes.
        return dimension_keys(dataset, contract)
            .into_iter()
            .map(|(key, _)| {
                Ok(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                    quote(&format!("{}_{key}_idx", dataset.table.name))?,
                    quote(&dataset.table.name)?,
                    quote(&key)?
                ))
            })
            .collect();
    }
    let mut columns = natural_key_columns(dataset)?;
    columns.push("\"valid_from\"".to_string());
    Ok(vec![format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
        quote(&format!("{}_versions", dataset.table.name))?,
        quote(&dataset.table.name)?,
        columns.join(", ")
    )])
}

/// `CREATE TABLE IF NOT EXISTS dim_date`.
pub fn create_dim_date(dialect: Dialect) -> String {
    let date = if dialect == Dialect::Postgres { "DATE" } else { "TEXT" };
    let boolean = if dialect == Dialect::Postgres { "BOOLEAN" } else { "INTEGER" };
    format!(
        "CREATE TABLE IF NOT EXISTS \"dim_date\" (\n    \"date_key\" INTEGER PRIMARY KEY,\n    \"date\" {date} NOT NULL,\n    \"year\" INTEGER NOT NULL,\n    \"quarter\" INTEGER NOT NULL,\n    \"month\" INTEGER NOT NULL,\n    \"month_name\" TEXT NOT NULL,\n    \"day\" INTEGER NOT NULL,\n    \"day_of_week\" INTEGER NOT NULL,\n    \"day_name\" TEXT NOT NULL,\n    \"iso_week\" INTEGER NOT NULL,\n    \"is_weekend\" {boolean} NOT NULL,\n    \"fiscal_year\" INTEGER,\n    \"fiscal_quarter\" INTEGER\n)"
    )
}

/// How an existing column's type, as the database reports it, compares with the contract's.
pub fn same_type(reported: &str, expected: &str) -> bool {
    let reported = reported.to_ascii_lowercase();
    let expected = expected.to_ascii_lowercase();
    let family = |text: &str| -> String {
        match text {
            "bigint" | "integer" | "int8" | "int4" => "integer".to_string(),
            "double precision" | "real" | "float8" => "float".to_string(),
            "timestamptz" | "timestamp with time zone" => "timestamp".to_string(),
            other if other.starts_with("numeric") => "numeric".to_string(),
            other => other.to_string(),
        }
    };
    family(&reported) == family(&expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        Contract::parse("pipeline.toml", include_str!("../../../examples/retail/pipeline.toml")).expect("valid")
    }

    #[test]
    fn identifiers_are_quoted_and_checked() {
        assert_eq!(quote("dim_customer").ok().as_deref(), Some("\"dim_customer\""));
        assert!(quote("x\"; drop table y; --").is_err());
        assert!(quote("Customer").is_err());
        assert_eq!(surrogate_key("dim_customer"), "customer_key");
    }

    #[test]
    fn dimension_ddl_has_surrogate_key_history_and_one_current_row_per_key() {
        let contract = contract();
        let customers = contract.dataset("customers").expect("customers");
        let statements = create_table(customers, &contract, Dialect::Postgres).expect("DDL");
        let table = &statements[0];
        assert!(table.starts_with("CREATE TABLE IF NOT EXISTS \"dim_customer\""), "{table}");
        assert!(table.contains("\"customer_key\" BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"), "{table}");
        assert!(table.contains("\"date_of_birth\" BIGINT"), "generalised to a year: {table}");
        assert!(table.contains("\"updated_at\" TIMESTAMPTZ"), "{table}");
        assert!(table.contains("\"valid_from\" TIMESTAMPTZ") && table.contains("\"is_current\" BOOLEAN"), "{table}");
        assert!(table.contains("\"customer_id\" TEXT COLLATE \"C\","), "the natural key compares bytewise: {table}");
        assert_eq!(table.matches("COLLATE").count(), 1, "only the natural key: {table}");
        assert!(
            statements[1].contains("UNIQUE INDEX IF NOT EXISTS \"dim_customer_cur\"")
                && statements[1].ends_with("WHERE is_current")
        );
        let sqlite = create_table(customers, &contract, Dialect::Sqlite).expect("DDL");
        assert!(sqlite[0].contains("\"customer_key\" INTEGER PRIMARY KEY AUTOINCREMENT"), "{}", sqlite[0]);
        assert!(!sqlite[0].contains("COLLATE"), "SQLite compares text bytewise already: {}", sqlite[0]);
    }

    #[test]
    fn fact_ddl_references_dimension_keys_and_keeps_money_exact() {
        let contract = contract();
        let sales = contract.dataset("sales").expect("sales");
        let table = &create_table(sales, &contract, Dialect::Postgres).expect("DDL")[0];
        for key in ["customer_key", "product_key", "store_key"] {
            assert!(table.contains(&format!("\"{key}\" BIGINT")), "{table}");
        }
        assert!(table.contains("\"unit_price\" NUMERIC(10,2)"), "{table}");
        assert!(table.contains("PRIMARY KEY (\"order_id\", \"line\")"), "{table}");
        assert!(table.contains("\"order_id\" TEXT COLLATE \"C\""), "{table}");
        assert_eq!(table.matches("COLLATE").count(), 1, "the references are data: {table}");
        let sqlite = &create_table(sales, &contract, Dialect::Sqlite).expect("DDL")[0];
        assert!(sqlite.contains("\"unit_price\" NUMERIC(10,2)"), "SQLite gives decimals numeric affinity: {sqlite}");
    }

    #[test]
    fn reported_types_compare_by_family() {
        assert!(same_type("bigint", "BIGINT"));
        assert!(same_type("timestamp with time zone", "TIMESTAMPTZ"));
        assert!(same_type("numeric", "NUMERIC(10,2)"));
        assert!(!same_type("text", "BIGINT"));
    }
}
