from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nas.data import Dataset, load_dataset
from tests.compress import models


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every compression test runs torch on one thread (and restores the setting after)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits16() -> Dataset:
    return load_dataset("digits", resolution=models.RESOLUTION, seed=0)


@pytest.fixture
def example() -> torch.Tensor:
    return torch.randn(2, models.IN_CHANNELS, models.RESOLUTION, models.RESOLUTION)


@pytest.fixture
def state_dict_file(tmp_path: Path) -> Path:
    """A plain_cnn state_dict saved with torch.save."""
    torch.manual_seed(0)
    path = tmp_path / "plain.pt"
    torch.save(models.plain_cnn().state_dict(), path)
    return path


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, f"not one line: {text!r}"
    return text
