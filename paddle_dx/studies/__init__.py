"""Reproduce the papers' studies and report them side by side with the published numbers."""
