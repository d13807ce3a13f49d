"""StreamCrawl's control plane: a Dagster code location (see ``definitions.py``).

Lists are loaded, rank ranges are published as crawl batches, topics are provisioned and
dead letters replayed here; the hot path's outputs are external assets kept current by
sensors. Nothing in ``workers/`` imports this package.
"""
