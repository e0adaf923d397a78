import pytest

# Helper modules whose asserts should explain themselves: registered before any test imports them.
pytest.register_assert_rewrite("tests.registries", "tests.live_stack")
