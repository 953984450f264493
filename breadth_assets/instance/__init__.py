"""Dagster instance storage for the project's Dagster home (configured in `dagster.yaml`)."""
