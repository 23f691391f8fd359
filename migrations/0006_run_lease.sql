-- A running run's lease: its writer renews heartbeat_at (Unix seconds, SQLite's clock) every
-- few seconds while the run is open. A 'running' run whose lease has lapsed is read as
-- interrupted at once, by any reader, with no restart and no guess from process ids (a reused
-- PID kept a dead run 'running' for good). A run stopped on purpose before its last window is
-- closed as 'interrupted' by its writer.
ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
-- Where the run's last checkpoint lives (a folder relative to the data directory): the engine's
-- state after its last committed window, written before that window's transaction and named
-- in it, so `tandem run --resume` continues exactly where the run stopped.
ALTER TABLE runs ADD COLUMN checkpoint TEXT;
