-- How many times the submitter corrected a submission: corrections are limited (see
-- submissions::MAX_CORRECTIONS), so that one edit link cannot walk a probe from cell to cell.
ALTER TABLE submissions ADD COLUMN corrections smallint NOT NULL DEFAULT 0;
