"""A GitHub-shaped REST server for tests; see `server.FakeGitHub`."""

from .server import FakeGitHub

__all__ = ["FakeGitHub"]
