"""User-facing errors: each names what is wrong and where (file and line, option and allowed values)."""


class TnError(Exception):
    """Bad input or configuration; the job stops with this message and a non-zero exit."""


class ConfigError(TnError):
    """An option has a value outside what it allows."""


class DataError(TnError):
    """A data file is missing or malformed."""


class ModelError(TnError):
    """A model cannot be loaded or its MLP cannot be located."""


def check_choice(option: str, value: object, allowed: "list[str] | tuple[str, ...] | set[str]") -> None:
    """Raise ConfigError unless `value` is one of `allowed`, naming the option and the allowed values."""
    if value not in allowed:
        raise ConfigError(f"{option}={value!r} is not allowed; choose one of: {', '.join(sorted(map(str, allowed)))}")


class NonFiniteError(TnError):
    """A forward pass produced inf or NaN (broken weights, an overflow): no metric is computed from it."""
