"""The rich renderer: ``process.rich`` → Chromium (Crawl4AI) → ``ProcessedPage``."""
