"""`hutch-runtime`: the OCI runtime with runc's command line (placeholder until implemented)."""
import sys


def main(argv=None):
    sys.stderr.write("hutch-runtime: not implemented yet\n")
    return 1


def cmd_runtime(ctx, argv):
    return main(argv)
