-- What each loaded run did per table, as the load reported it: a re-drive of a load that had
-- committed reports the same instead of loading the run again.
ALTER TABLE lakestar_runs ADD COLUMN table_counts TEXT;
