"""The OCI runtime (runc's job): bundles in, containers out. Imports nothing above it."""
