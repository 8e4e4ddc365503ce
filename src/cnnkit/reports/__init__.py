"""Renderers: figures and tables made from results, written to files."""
