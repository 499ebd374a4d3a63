"""What every request came to: metrics, the log line, the request log, the live dashboard."""
