"""Test helpers: request audits, fault injection, local servers."""
