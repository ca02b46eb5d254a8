//! The eLicense Ledger SDK: a typed licence API and holder helpers.
