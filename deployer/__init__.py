"""Zero-downtime blue-green releases on one Docker host."""


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed distribution only when asked (`--version`): the
    version of the git tag it was built at (hatch-vcs)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bluegreen-deployer")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0.0.0+unknown"
