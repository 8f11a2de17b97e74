"""A fleet: the targets file of many buckets, and the report and notice of a fleet run."""
