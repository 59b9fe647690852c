-- When each quality figure was recorded: quality over time orders runs by it.
ALTER TABLE quality_metrics ADD COLUMN IF NOT EXISTS recorded_at TIMESTAMPTZ NOT NULL DEFAULT now();
