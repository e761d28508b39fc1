"""Runtime errors: one line, runc's wording where runc has one."""


class RuntimeFailure(Exception):
    """A runtime operation failed; str(e) is the one line the user sees."""


class ContainerNotFound(RuntimeFailure):
    pass
