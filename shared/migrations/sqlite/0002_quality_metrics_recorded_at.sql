-- When each quality figure was recorded: quality over time orders runs by it (fixed-width UTC
-- text, as every instant of the SQLite warehouse; older rows keep an empty text).
ALTER TABLE quality_metrics ADD COLUMN recorded_at TEXT NOT NULL DEFAULT '';
