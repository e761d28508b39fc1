"""hutch: a container engine (Docker's commands) and an OCI runtime (runc's command line)."""
__version__ = "0.1.0"
