"""Package discovery for the folder-to-import-name mapping of pyproject.toml.

The repository keeps the owner's layout (``core/``, ``plugins/<name>/``) while the installed
import names are ``hookmq`` and ``hookmq.plugins.<name>``; setuptools' own finder cannot rename
folders, so the package list is derived here from the folders.
"""

from setuptools import find_namespace_packages, setup


def renamed(folder: str, import_name: str) -> list[str]:
    """List the packages under ``folder`` (data folders such as ``static/`` included) under their installed names."""
    found = find_namespace_packages(where=folder, exclude=["*__pycache__*", "*.mypy_cache*"])
    return [import_name] + [f"{import_name}.{name}" for name in found]


setup(packages=renamed("core", "hookmq") + renamed("plugins", "hookmq.plugins"))
