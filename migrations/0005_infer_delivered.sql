-- The real clock's inference jobs are time-sliced like retraining: each stream-window keeps
-- its inference job's allocated and delivered share from the decision on (NULL on the
-- virtual clock, where delivered equals allocated by construction).
ALTER TABLE stream_windows ADD COLUMN infer_allocated_share REAL;
ALTER TABLE stream_windows ADD COLUMN infer_delivered_share REAL;
