"""Glue for distributed training libraries, each imported only when a model uses it (all of them are optional)."""
