"""Deploys: a pushed commit into a running release (build, release, cutover, rollback)."""
