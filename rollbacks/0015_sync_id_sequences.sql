-- Nothing to undo here: the rollbacks of 0011 and 0008 rewind the sequences when they
-- remove the default teams and organizations.
SELECT 1;
