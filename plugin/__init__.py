"""The plugin class and its background runner."""
