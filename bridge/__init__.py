"""aifinops bridge: everything Kafka — producer, consumer pipeline, topics and the Alertmanager webhook."""
