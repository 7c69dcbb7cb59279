"""aifinops commands: flag parsing, config loading and the wiring of exporters, bridge and demo."""
