"""``python -m flowcli`` = the ``flowcli`` command."""
from flowcli.cli import main

if __name__ == "__main__":
    main(prog_name="flowcli")
