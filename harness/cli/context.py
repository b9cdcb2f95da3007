"""What every command shares: the consoles, the global options, and how a command gets its harness."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.bootstrap import Harness, build
from harness.config.settings import Settings, find_config, load_settings

out = Console()
err = Console(stderr=True)


@dataclass
class Options:
    """The global ``--config`` and ``--profile`` of this invocation."""

    config: Path | None = None
    profile: str | None = None


options = Options()


def config_path() -> Path:
    return options.config or find_config()


def settings() -> Settings:
    return load_settings(config_path(), options.profile)


def harness() -> Harness:
    return build(settings())
