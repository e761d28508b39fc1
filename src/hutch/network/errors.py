"""Errors of the network layer; str() is the one line the user sees (Docker's wording)."""


class NetworkError(Exception):
    """A request the network layer refuses or cannot carry out."""


class NetworkNotFound(NetworkError):
    def __init__(self, name: str):
        super().__init__(f"network {name} not found")
        self.name = name


class PortAllocated(NetworkError):
    """The host port is taken (by another container or by a host process)."""
