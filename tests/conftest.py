import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gitops import demo_like_repo  # noqa: E402

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def gitops(tmp_path):
    return demo_like_repo(tmp_path / "gitops")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"
