"""Runtime errors: one line, runc's wording where runc has one."""


class RuntimeFailure(Exception):
    """A runtime operation failed; str(e) is the one line the user sees."""


class ContainerNotFound(RuntimeFailure):
    pass


class HookError(Exception):
    """An OCI hook failed (runc's wording). Here, not in hooks.py: a create tells it apart
    without importing the hooks, which only a config with hooks loads."""
