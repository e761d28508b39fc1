"""The engine: what Docker's daemon does, without a daemon.

    from hutch.engine.containers import Engine, CreateOptions
    eng = Engine(paths)
    c, warnings = eng.create(CreateOptions(image="busybox", cmd=["true"], ...))
    eng.start(c.id)                      # spawns the container's monitor (engine.monitor)
    eng.stop(ref, timeout) / kill(ref, sig) / pause / unpause / restart / remove(ref, force, volumes)
    eng.wait(ref) -> exit code;  eng.get(ref) / eng.list() -> store.Container
    engine.views.inspect(paths, container) -> Docker's inspect JSON

Modules: store (containers on disk, names, locks), states (Docker's state table and error
wording), spec (Docker options -> OCI config.json), lifecycle (rootfs, netns, clean-up),
monitor (the per-container shim), attach (the attach client), logs (json-file), execs,
stats, export, views; resources, security, volumes come from their own owners.
Errors are hutch.engine.errors.EngineError subclasses: str() is Docker's one line.
"""
