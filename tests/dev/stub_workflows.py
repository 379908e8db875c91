"""The workflow module the stub stack names (its handlers are stubs: nothing is registered)."""
