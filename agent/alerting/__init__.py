"""The alert router: dedup, grouping, rate limits, the durable spool and per-output delivery with retry."""
