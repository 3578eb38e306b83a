"""Speed and memory benchmarks: `make bench` runs them all, `python -m bench NAME` one of them."""


def compiled_like_an_install() -> None:
    """Byte-compile the bot's sources, as `pip install` does on a runner: the process-cost benches
    then measure the bot, not the compiler (with PYTHONDONTWRITEBYTECODE set, a checkout run
    straight from source recompiles every module in every process)."""
    import compileall
    from pathlib import Path

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "bot", quiet=1)
