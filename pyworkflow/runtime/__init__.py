"""The only code that executes what the core decides: load → replay → run → append → dispatch."""
