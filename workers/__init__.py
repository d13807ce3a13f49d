"""StreamCrawl workers: the hot-path daemons and the small shared core."""
