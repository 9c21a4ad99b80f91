"""The built-in engines, one module each, registering their `Engine` records in `runtime.engines`."""
