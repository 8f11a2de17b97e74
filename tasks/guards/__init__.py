"""What may stop a run before it deletes: blast-radius limits, the operator's limits, the bucket's
lock, a person's approval."""
