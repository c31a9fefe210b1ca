"""The Docker SDK's exception classes, imported when first named: `except sdk_errors.NotFound`
evaluates the name only once something was raised, so a command whose calls all succeed never
imports the SDK and requests for its error handling (hermesctl.backends.docker.unix_api)."""


def __getattr__(name: str):
    if name in ("NotFound", "APIError"):
        import docker.errors
        value = getattr(docker.errors, name)
    elif name == "CONNECTION_ERRORS":  # a connection the SDK's transport lost, or that timed out
        import requests.exceptions
        value = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    else:
        raise AttributeError(name)
    globals()[name] = value
    return value
