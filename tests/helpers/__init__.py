"""What the tests share besides fixtures (those are in conftest.py): import from the module that says
what it is, e.g. `from helpers.mirror import Mirror`."""
