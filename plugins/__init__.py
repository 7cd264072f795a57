"""Built-in hookmq plugins, each registered through the `hookmq` entry-point group."""
