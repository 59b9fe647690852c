-- Lakestar's own tables: the run registry, the load audit and the quality metrics.
CREATE TABLE IF NOT EXISTS lakestar_runs (
    run_id      TEXT PRIMARY KEY,
    dataset     TEXT NOT NULL,
    source_key  TEXT NOT NULL,
    loaded_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS load_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    inserted    INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    unchanged   INTEGER NOT NULL,
    inferred    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS quality_metrics (
    run_id      TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    metric      TEXT NOT NULL,
    dimension   TEXT NOT NULL DEFAULT '',
    value       REAL NOT NULL,
    PRIMARY KEY (run_id, metric, dimension)
);
