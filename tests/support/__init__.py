"""Test helpers: Kafka clients and a webhook receiver (the services themselves come from aifinops.cli.demo.stack)."""
