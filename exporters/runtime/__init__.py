"""What the three daemons share: HTTP serving, config loading, logging, polling and self-metrics."""
