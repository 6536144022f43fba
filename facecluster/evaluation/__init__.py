"""Measurements of the pipeline on labelled face data."""
