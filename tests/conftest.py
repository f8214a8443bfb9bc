import sys
from pathlib import Path

import pytest
import yaml

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
    from darklens.config import validate_config

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    base = yaml.safe_load((REPO / "config.yaml").read_text())
    return validate_config(merge(base, yaml.safe_load((REPO / "tests" / "tiny.yaml").read_text())))
