-- Why a prediction was not the estimator's: its error, when the estimator plugin failed and the
-- last profiled point stood in.
ALTER TABLE predictions ADD COLUMN estimator_error TEXT;
