"""Errors an endpoint returns to the caller, with Nomad's status codes and texts."""


class EndpointError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def multi_error(messages: list[str]) -> str:
    """Nomad's (go-multierror) rendering of several errors."""
    count = len(messages)
    head = "1 error occurred:" if count == 1 else f"{count} errors occurred:"
    return head + "\n" + "".join(f"\t* {m}\n" for m in messages) + "\n"
