import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def default_config() -> dict:
    from darklens.config import load_config

    return load_config(REPO / "config.yaml")


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    """config.yaml overlaid with tests/tiny.yaml, as `--configfile tests/tiny.yaml` does."""
    from darklens.config import load_config

    return load_config(REPO / "tests" / "tiny.yaml", base=REPO / "config.yaml")
